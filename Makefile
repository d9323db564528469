# ppdl — every notebook is executed headlessly with papermill; figures/ and results/ are regenerated.
# `make help` lists the targets.  Executed copies are file targets named after the run
# (build/notebooks/<notebook>_<run>.ipynb, run = synthetic | <data folder>, + _quick, + SUFFIX), and a
# run's outputs go to results/<run>/ and figures/<run>/ (ppdl_utils.outputs), so a quick or real-data
# run never overwrites another's outputs, and `make -j2 all` is safe: a notebook that reads another's
# results depends on that notebook's executed copy.
PYTHON ?= python3
VENV ?= venv
BIN := $(VENV)/bin
QUICK ?= 0
DATA ?=
WEIGHTS ?=
PARAMS ?=
PARAMFILE ?=
SUFFIX ?=
# make key_draws: fresh keys x new split seeds (1, 2, ...); split seed 0 is make reproduce's run, pooled in
DRAWS ?= 3
# a cell that runs longer than this (seconds) fails the notebook instead of hanging (nbclient + widgets can)
CELL_TIMEOUT ?= 7200
SPLITS ?= 1
JOBS ?= 2
BUILD := build/notebooks
STAMP := $(VENV)/.installed

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
STEMS := $(basename $(notdir $(NOTEBOOKS)))
# the run name: ppdl_utils.config.run_name, the function the notebooks name their outputs with (it needs
# only the standard library, so the system python answers before ./venv exists)
RUN := $(shell $(PYTHON) -m ppdl_utils.config run-name --data '$(DATA)' --quick '$(QUICK)' --suffix '$(SUFFIX)')
$(if $(RUN),,$(error cannot compute the run name: $(PYTHON) -m ppdl_utils.config run-name failed))
EXECUTED = $(BUILD)/$(1)_$(RUN).ipynb
# DATA, WEIGHTS and SUFFIX go to every notebook (one that lacks the parameter ignores it);
# what PARAMFILE and PARAMS set must exist in the notebook, or the run stops before it starts
CHECKED_PARAMS = $(if $(PARAMFILE),-f $(abspath $(PARAMFILE))) $(PARAMS)
PAPERMILL_PARAMS = -p quick $(QUICK) $(if $(DATA),-p data_dir $(abspath $(DATA))) \
	$(if $(WEIGHTS),-p weights $(abspath $(WEIGHTS))) $(if $(SUFFIX),-p run_suffix $(SUFFIX)) $(CHECKED_PARAMS)

.PHONY: help all notebooks test lint lab bench clean venv reproduce budget key_draws table_draws private_pipeline docs migrate \
	$(STEMS)
.DEFAULT_GOAL := help

help:  ## this list
	@echo "usage: make TARGET [QUICK=1] [DATA=folder] [WEIGHTS=file] [SUFFIX=_name] [PARAMFILE=params/x.yaml] [PARAMS='-p k v']"
	@grep -hE '^[A-Za-z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-24s %s\n", $$1, $$2}'
	@echo "  01_key_generation ...     one notebook (each numbered notebook is a target)"

# JOBS notebooks at a time: most cells are single-threaded (Paillier, TenSEAL, attacks), so two keep two
# cores busy; the prerequisites below order what must be ordered, and -O keeps each log in one piece
all:  ## every notebook on the embedded synthetic default (offline), JOBS=2 at a time; DATA=... for real images
	$(MAKE) --jobs=$(JOBS) --output-sync=target notebooks

migrate:  ## move flat results/ and figures/ files (<NN>_<run>_<stem>) into their run folders (idempotent)
	$(PYTHON) -m ppdl_utils.outputs migrate --root .

notebooks: $(STEMS)

venv: $(STAMP)  ## create ./venv and install the package with its test and docs extras

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@

# one phony name per notebook -> its executed copy for this run
$(STEMS): %: $(BUILD)/%_$(RUN).ipynb

# notebooks that read another notebook's results depend on that notebook's executed copy
$(call EXECUTED,04_results): $(call EXECUTED,03_training)
$(call EXECUTED,06_attacks): $(call EXECUTED,03_training)
$(call EXECUTED,08_privacy_ladder): $(call EXECUTED,03_training) $(call EXECUTED,06_attacks)
$(call EXECUTED,10_private_pipeline): $(call EXECUTED,03_training) $(call EXECUTED,06_attacks)

$(BUILD)/%_$(RUN).ipynb: notebooks/%.ipynb $(STAMP) $(PARAMFILE)
	@mkdir -p $(BUILD) figures results
	$(BIN)/python -m ppdl_utils.notebook_params $< $(CHECKED_PARAMS)
	PPDL_COMMAND='$(subst ','\'',$(strip papermill $< $@ $(PAPERMILL_PARAMS)))' \
	$(BIN)/papermill --cwd notebooks -k python3 --log-output --no-progress-bar --execution-timeout $(CELL_TIMEOUT) \
		$< $(@:.ipynb=.part.ipynb) $(PAPERMILL_PARAMS)
	mv $(@:.ipynb=.part.ipynb) $@

reproduce: $(STAMP)  ## notebooks 03-04 on a real dataset: make reproduce DATA=... [WEIGHTS=...]
	@test -n "$(DATA)" || { echo "make reproduce needs DATA=path/to/class-folders (e.g. ../shared/data/covid19_radiography_3class)"; exit 2; }
	@test -d "$(DATA)" || { echo "make reproduce: DATA=$(DATA) is not a folder"; exit 2; }
	$(MAKE) 03_training 04_results DATA=$(DATA) WEIGHTS=$(WEIGHTS) QUICK=$(QUICK) PARAMS="$(PARAMS)" \
		PARAMFILE=$(PARAMFILE) SUFFIX=$(SUFFIX)

budget: $(STAMP)  ## epochs the table regime needs to come within 2 points of plain (DATA=..., ~1 h)
	@test -n "$(DATA)" || { echo "make budget needs DATA=path/to/class-folders"; exit 2; }
	$(MAKE) 03_training DATA=$(DATA) WEIGHTS=$(WEIGHTS) SUFFIX=_budget_seriation PARAMFILE=params/budget_seriation.yaml
	$(MAKE) 03_training DATA=$(DATA) WEIGHTS=$(WEIGHTS) SUFFIX=_budget_oracle PARAMFILE=params/budget_oracle.yaml

# Every deterministic regime, bare and seriation-started, under DRAWS fresh keys (keys/draw<k>/) and
# SPLITS split seeds, plain once per split seed.  Resumable: a finished (key, seed) run is an executed
# copy in build/notebooks and is not redone, and inside an interrupted one every model already saved
# with the same data, key, split and settings is kept (resume=1).  Notebook 04 (section "key
# draws") reads them back.
# split seed outermost: a partial run has every key of the first split (the key spread) first.
# EARLIER_DRAW_RUNS: whole run names of earlier runs of the same recipe, pooled in (notebook 04 checks the
# recipe); by default make reproduce's run on the same DATA (split seed 0, its own key) when it exists, so
# the default 3 keys x 1 new split (19 models, about 2 h here) gives every regime 4 keys over 2 split seeds
EARLIER_DRAW_RUNS ?= $(if $(wildcard results/$(RUN)/03_summary.csv),$(RUN))
KEY_DRAW_RUNS := $(foreach s,$(shell seq 1 $(SPLITS)),$(foreach k,$(shell seq 1 $(DRAWS)),_key$(k)_split$(s)))
key_draws: $(STAMP)  ## every deterministic regime under DRAWS keys x SPLITS new splits, pooled with make reproduce's (DATA=...)
	@test -n "$(DATA)" || { echo "make key_draws needs DATA=path/to/class-folders [DRAWS=3 SPLITS=1]"; exit 2; }
	for run in $(KEY_DRAW_RUNS); do \
		k=$$(echo $$run | sed -E 's/_key([0-9]+)_split([0-9]+)/\1/'); s=$$(echo $$run | sed -E 's/_key([0-9]+)_split([0-9]+)/\2/'); \
		file=params/key_draws.yaml; [ $$k = 1 ] && file=params/key_draws_plain.yaml; \
		$(MAKE) 03_training DATA=$(DATA) WEIGHTS=$(WEIGHTS) QUICK=$(QUICK) SUFFIX=$$run PARAMFILE=$$file \
			PARAMS="-p keys_dir ../keys/draw$$k -p key_draw $$k -p split_seed $$s -p resume 1" || exit 1; \
	done
	$(MAKE) 04_results -o $(BUILD)/03_training_$(RUN)_key1_split1.ipynb DATA=$(DATA) QUICK=$(QUICK) SUFFIX=_key1_split1 \
		PARAMS="-p key_draw_runs '$(KEY_DRAW_RUNS)' \
		$(if $(EARLIER_DRAW_RUNS),-p earlier_draw_runs '$(EARLIER_DRAW_RUNS)')"

table_draws: key_draws  ## (old name) see key_draws

# The private pipeline over split seeds 0-2 (params/private_pipeline.yaml).  It compares with notebook 03's plain
# model of each split: split seed 0 is make reproduce's run (needed first); the plain models of split seeds 1-2
# are trained here when neither this target nor make key_draws made them (about 5-8 min each on 2 cores).
private_pipeline: $(STAMP)  ## a head trained and run on ciphertexts only, split seeds 0-2, beside the plain model (DATA=...)
	@test -n "$(DATA)" || { echo "make private_pipeline needs DATA=path/to/class-folders"; exit 2; }
	@test -f results/$(RUN)/03_plain_predictions.csv || { echo "make private_pipeline: run make reproduce DATA=$(DATA) first (the plain model of split seed 0)"; exit 2; }
	for s in 1 2; do \
		[ -f results/$(RUN)_key1_split$${s}/03_plain_predictions.csv ] || [ -f results/$(RUN)_plain_split$${s}/03_plain_predictions.csv ] \
		|| $(MAKE) 03_training DATA=$(DATA) WEIGHTS=$(WEIGHTS) SUFFIX=_plain_split$$s PARAMFILE=params/plain.yaml \
			PARAMS="-p split_seed $$s" || exit 1; \
	done
	$(MAKE) 10_private_pipeline -o $(BUILD)/03_training_$(RUN).ipynb -o $(BUILD)/06_attacks_$(RUN).ipynb DATA=$(DATA) \
		WEIGHTS=$(WEIGHTS) PARAMFILE=params/private_pipeline.yaml

test: $(STAMP)  ## the whole test suite (what CI runs): unit tests, lint, every notebook with tiny parameters
	$(BIN)/python -m pytest -q

lint: $(STAMP)  ## ruff over the package, tests, bench and notebooks
	$(BIN)/ruff check .

lab: $(STAMP)  ## JupyterLab on notebooks/ (widgets live in the running kernel)
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(STAMP)  ## the benchmarks in bench/ (Paillier, private inference, schemes, private pipeline, batched and one-image CKKS)
	$(BIN)/python bench/bench_paillier.py
	$(BIN)/python bench/bench_private_inference.py
	$(BIN)/python bench/bench_schemes.py
	$(BIN)/python bench/bench_private_pipeline.py $(if $(DATA),--data $(abspath $(DATA)))
	$(BIN)/python bench/bench_batched_ckks.py $(if $(DATA),--data $(abspath $(DATA)))
	$(BIN)/python bench/bench_single_image.py $(if $(DATA),--data $(abspath $(DATA)))

# the site publishes the executed notebooks of one run (make all writes build/notebooks/*_synthetic.ipynb);
# a notebook not executed for that run gets a page that says how to produce it
DOCS_RUN ?= synthetic
docs: $(STAMP)  ## render the results tables into README.md and docs/, build the static site into build/site/
	$(BIN)/python -m ppdl_utils.reporting.site render
	$(BIN)/python -m ppdl_utils.reporting.site build --run $(DOCS_RUN)
	@echo "open build/site/index.html (file://, no server needed)"

clean:  ## remove build/ (executed notebooks); figures/<run>/ and results/<run>/ are kept
	rm -rf build
