# ppdl — every notebook is executed headlessly with papermill; figures/ and results/ are regenerated.
#   make all                 all notebooks on the embedded synthetic data (offline)
#   make all QUICK=1         the same with tiny parameters (what the tests use)
#   make 02_image_encryption one notebook
#   make reproduce DATA=../shared/data/covid19_radiography_2class WEIGHTS=path/to/mobilenet.weights.h5
#                            notebooks 03-04 on real data (WEIGHTS: offline ImageNet backbone)
#   make budget DATA=... WEIGHTS=...   epochs the table regime needs to come within 2 points of plain
#   make table_draws DATA=... WEIGHTS=...   the table regime under DRAWS fresh keys (its spread)
#   make test | make lab | make bench
PYTHON ?= python3
VENV ?= venv
BIN := $(VENV)/bin
QUICK ?= 0
DATA ?=
DRAWS ?= 2
WEIGHTS ?=
PARAMS ?=
SUFFIX ?=
BUILD := build/notebooks
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
STEMS := $(basename $(notdir $(NOTEBOOKS)))
PAPERMILL_PARAMS := -p quick $(QUICK) $(if $(DATA),-p data_dir $(abspath $(DATA))) \
	$(if $(WEIGHTS),-p weights $(abspath $(WEIGHTS))) $(PARAMS)

.PHONY: all test lab bench clean venv reproduce budget table_draws $(STEMS)

all: $(STEMS)

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(STEMS): %: $(VENV)/.installed
	@mkdir -p $(BUILD) figures results
	$(BIN)/papermill --cwd notebooks -k python3 --log-output --no-progress-bar \
		notebooks/$@.ipynb $(BUILD)/$@$(SUFFIX).ipynb $(PAPERMILL_PARAMS)

reproduce: $(VENV)/.installed
	@test -n "$(DATA)" || { echo "usage: make reproduce DATA=path/to/class-folders"; exit 2; }
	$(MAKE) 03_training 04_results DATA=$(DATA) WEIGHTS=$(WEIGHTS) QUICK=$(QUICK) PARAMS="$(PARAMS)" SUFFIX=_real

# Test accuracy per training budget (notebook 03, monitor_test): plain, the table regime, and the table
# regime with a learnable input layer started from the ciphertext-only seriation (40 epochs), then
# from the plaintexts ("oracle", 20 epochs: a start no server can have). ~1 h on 2 cores.
budget: $(VENV)/.installed
	@test -n "$(DATA)" || { echo "usage: make budget DATA=path/to/class-folders WEIGHTS=..."; exit 2; }
	$(MAKE) 03_training DATA=$(DATA) WEIGHTS=$(WEIGHTS) SUFFIX=_budget_seriation PARAMS="-p epochs 40 \
		-p monitor_test 1 -y 'regimes: [plain, table]' -y 'input_table_regimes: [table]' \
		-p input_table_init seriation -p run_suffix _budget_seriation"
	$(MAKE) 03_training DATA=$(DATA) WEIGHTS=$(WEIGHTS) SUFFIX=_budget_oracle PARAMS="-p epochs 20 \
		-p monitor_test 1 -y 'regimes: [plain]' -y 'input_table_regimes: [table]' \
		-p input_table_init oracle -p run_suffix _budget_oracle"

# The table regime (plain MobileNetV2 and the seriation-started input layer, default budget) under
# DRAWS fresh 2048-bit keys in keys/draw<k>/ (a new secret table each): ~9 min per draw.
table_draws: $(VENV)/.installed
	@test -n "$(DATA)" || { echo "usage: make table_draws DATA=path/to/class-folders WEIGHTS=... [DRAWS=2]"; exit 2; }
	for k in $$(seq 1 $(DRAWS)); do \
		$(MAKE) 03_training DATA=$(DATA) WEIGHTS=$(WEIGHTS) SUFFIX=_draw$$k PARAMS="-p keys_dir ../keys/draw$$k \
			-y 'regimes: [table]' -y 'input_table_regimes: [table]' -p input_table_init seriation \
			-p run_suffix _draw$$k" || exit 1; \
	done

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lab: $(VENV)/.installed
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(VENV)/.installed
	$(BIN)/python bench/bench_paillier.py
	$(BIN)/python bench/bench_private_inference.py
	$(BIN)/python bench/bench_schemes.py

clean:
	rm -rf build
