"""Every results table the README and the documentation show, rendered from the run folders ``results/<run>/``.

A page holds a table as a generated block, rewritten by ``make docs`` (``python -m
ppdl_utils.reporting.site render``) and checked by the test suite::

    <!-- BEGIN generated: covid2_overview -->
    | regime | test accuracy (95% CI) | ... |
    <!-- END generated -->

Each entry of :data:`TABLES` reads its results files and returns markdown; a file that does not exist
gives a sentence naming it and the command that writes it, so a page never shows a number that no
command produced.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ppdl_utils.errors import PPDLError
from ppdl_utils.outputs import BENCH, flat_name, run_dir
from ppdl_utils.reporting.key_draws import distribution

Renderer = Callable[[Path], str]
TABLES: dict[str, Renderer] = {}


class UnknownTableError(PPDLError, KeyError):
    """A generated block names a table that :data:`TABLES` does not have."""


def _table(name: str) -> Callable[[Renderer], Renderer]:
    def register(function: Renderer) -> Renderer:
        TABLES[name] = function
        return function
    return register


class _Missing(Exception):
    """A results file a table needs does not exist (rendered as a sentence, not raised to the reader)."""

    def __init__(self, path: Path, command: str):
        super().__init__(path)
        self.path, self.command = path, command


def _read(results: Path, run: str, name: str, command: str, **kwargs) -> pd.DataFrame:
    path = run_dir(results, run) / name
    if not path.is_file():
        raise _Missing(path, command)
    return pd.read_csv(path, **kwargs)


def markdown(frame: pd.DataFrame, align_right: tuple[str, ...] = ()) -> str:
    """A GitHub/MyST pipe table of `frame` (its index is not shown; cells as they are, ``|`` escaped)."""
    def cell(value) -> str:
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else str(value).replace("|", "\\|").replace("\n", " ")
    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if c in align_right else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def render(name: str, results_dir: "str | Path") -> str:
    """The markdown of table `name` from the files under `results_dir`."""
    if name not in TABLES:
        raise UnknownTableError(f"generated block {name!r}: no such table (known: {', '.join(sorted(TABLES))})")
    try:
        return TABLES[name](Path(results_dir)).rstrip("\n")
    except _Missing as missing:
        return f"*Not run yet: `{_shown(missing.path)}` does not exist. `{missing.command}` writes it.*"


def _shown(path: Path) -> str:
    """A results file as the pages name it: ``results/<run>/<name>``."""
    return f"results/{path.parent.name}/{path.name}"


def _pct(x: float, digits: int = 1) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def _ci(text) -> str:
    return "" if not isinstance(text, str) else text.replace("%–", "–").replace("%", "")


# --- notebooks 03-04: one run per dataset -------------------------------------------------------------

REPRODUCE = {"covid2": ("covid19_radiography_2class", "make reproduce DATA=../shared/data/covid19_radiography_2class"),
             "covid3": ("covid19_radiography_3class", "make reproduce DATA=../shared/data/covid19_radiography_3class "
                                                      "PARAMFILE=params/reproduce.yaml"),
             "synthetic": ("synthetic", "make all")}


def overview(results: Path, run: str, command: str) -> str:
    """Notebook 04's overview of one run: test accuracy with its 95% interval, macro F1, best epoch."""
    frame = _read(results, run, "04_overview.csv", command, index_col=0)
    rows = pd.DataFrame({
        "model": frame.index,
        "what the network is fed": frame["regime"],
        "test accuracy (95% CI)": [f"{_pct(a)} ({_ci(c)})" for a, c in zip(frame["test accuracy"], frame["95% CI"])],
        "test images": frame["test images"],
        "macro F1": frame["macro F1"].map(lambda v: f"{v:.3f}"),
        "best val accuracy (epoch)": [f"{_pct(v)} ({int(e)})" for v, e in
                                      zip(frame["best val accuracy"], frame["best epoch"])],
    })
    return markdown(rows)


for _key, (_run, _command) in REPRODUCE.items():
    _table(f"{_key}_overview")(lambda results, run=_run, command=_command: overview(results, run, command))


@_table("covid2_budget")
def budget(results: Path) -> str:
    """Test accuracy of the model each training budget would restore (``make budget``), per model."""
    command = "make budget DATA=../shared/data/covid19_radiography_2class"
    budgets = (1, 5, 10, 20, 30, 40)
    rows = []
    for suffix, what in (("seriation", "seriation start"), ("oracle", "plaintext (oracle) start")):
        curves = _read(results, f"covid19_radiography_2class_budget_{suffix}", "03_budget_curves.csv", command,
                       header=[0, 1], index_col=0)
        for model in dict.fromkeys(curves.columns.get_level_values(0)):
            if suffix == "oracle" and model == "plain":
                continue  # the same plain model as the seriation run (both runs restart from one seed)
            test = curves[(model, "test accuracy")]
            label = model if "input_table" not in model else f"{model} ({what})"
            rows.append({"model": label, **{str(b): _pct(test.get(b, np.nan)) if b <= len(test) else ""
                                            for b in budgets}})
    return markdown(pd.DataFrame(rows).rename(columns={str(b): f"{b} epoch{'s' * (b > 1)}" for b in budgets}))


@_table("covid3_comparison")
def covid3_comparison(results: Path) -> str:
    """The paper's Tables II-III beside ours: accuracy and per-class F1 (notebook 04's comparison)."""
    frame = _read(results, "covid19_radiography_3class", "04_comparison.csv", REPRODUCE["covid3"][1],
                  index_col=0)
    f1 = [r for r in frame.index if r.startswith("f1 ")]
    rows = pd.DataFrame({"model": frame.columns,
                         "test accuracy": [_pct(v) for v in frame.loc["test_accuracy"]],
                         "test images": frame.loc["n_test"].astype(int),
                         "classes": frame.loc["classes"].astype(int),
                         **{f"F1 {r[3:]}": frame.loc[r].map(lambda v: f"{v:.3f}") for r in f1}})
    return markdown(rows)


RECIPES = (("", "default: 10 epochs, Adam 5e-4 constant"), ("_recipe_20_epochs", "20 epochs"),
           ("_recipe_warmup_cosine_lr1e-3", "warm-up + cosine, lr 1e-3"),
           ("_recipe_bn0.99", "batch-norm momentum 0.99 (instead of 0.9)"),
           ("_recipe_input_table", "learnable 256-entry input layer, identity start"),
           ("_recipe_seriation", "learnable 256-entry input layer, ciphertext-only seriation start"))


@_table("covid2_recipes")
def covid2_recipes(results: Path) -> str:
    """Test accuracy of each training recipe on the same 2-class split (notebook 03 summaries)."""
    rows = []
    for suffix, what in RECIPES:
        command = "make reproduce DATA=../shared/data/covid19_radiography_2class" + \
            (f" SUFFIX={suffix} PARAMS=..." if suffix else "")
        summary = _read(results, f"covid19_radiography_2class{suffix}", "03_summary.csv", command, index_col=0)
        accuracy = {label.replace("+input_table", ""): _pct(v) for label, v in summary["test accuracy"].items()
                    if label not in ("plain", "randomized")}
        rows.append({"recipe (same data and split, 128 px)": what, "run": f"`covid19_radiography_2class{suffix}`",
                     **{r: accuracy.get(r, "") for r in ("table", "fixed_r", "r_one")}})
    return markdown(pd.DataFrame(rows))


# --- key draws ----------------------------------------------------------------------------------------

def key_draws(results: Path, run: str, command: str) -> str:
    draws = _read(results, run, "04_key_draws.csv", command)
    table = distribution(draws)
    seeds = draws.groupby("label", sort=False)["split_seed"].apply(lambda s: ", ".join(map(str, sorted(set(s)))))
    keys = draws.groupby("label", sort=False)["key"].nunique()
    rows = pd.DataFrame({
        "model": table.index,
        "draws": table["draws"].astype(int),
        "keys / split seeds": [f"{'—' if m == 'plain' else keys[m]} / {seeds[m]}" for m in table.index],
        "mean ± sd": [f"{100 * m:.1f} ± {100 * s:.1f}%" if not math.isnan(s) else _pct(m)
                      for m, s in zip(table["mean"], table["sd"])],
        "min–max": [f"{100 * a:.1f}–{_pct(b)}" for a, b in zip(table["min"], table["max"])],
        "mean gap to plain (same split)": table["mean gap (points)"].map(lambda g: f"{g:+.1f}"),
        "within 2 points of plain": [f"{round(w * n)}/{int(n)}" for w, n in
                                     zip(table["within 2 points of plain"], table["draws"])],
    })
    return markdown(rows)


_table("covid2_key_draws")(lambda results: key_draws(
    results, "covid19_radiography_2class",
    "make key_draws DATA=../shared/data/covid19_radiography_2class"))
_table("covid3_key_draws")(lambda results: key_draws(
    results, "covid19_radiography_3class",
    "make key_draws DATA=../shared/data/covid19_radiography_3class"))


@_table("headline")
def headline(results: Path) -> str:
    """Mean test accuracy over every key draw and split, per model and dataset; randomized from one run."""
    columns = {}
    for key, name in (("covid2", "COVID vs Normal"), ("covid3", "COVID / Normal / Viral Pneumonia")):
        run, _ = REPRODUCE[key]
        draws = _read(results, run, "04_key_draws.csv", f"make key_draws DATA=../shared/data/{run}")
        table = distribution(draws)
        cells = {m: f"{_pct(r['mean'])} ({int(r['draws'])} draw{'s' if r['draws'] > 1 else ''})"
                 for m, r in table.iterrows()}
        single = _read(results, run, "04_overview.csv", REPRODUCE[key][1], index_col=0)
        if "randomized" in single.index:
            cells["randomized"] = f"{_pct(single.loc['randomized', 'test accuracy'])} " \
                                  f"({int(single.loc['randomized', 'test images'])} test images: chance)"
        columns[name] = cells
    models = list(dict.fromkeys(m for cells in columns.values() for m in cells))
    server = {"plain": "the image", "randomized": "nothing (IND-CPA)"}
    rows = pd.DataFrame({"model": models,
                         **{name: [cells.get(m, "") for m in models] for name, cells in columns.items()},
                         "what the server can read": [server.get(m, "the image (notebook 06)") for m in models]})
    return markdown(rows)


# --- notebook 05: schemes -----------------------------------------------------------------------------

SCHEMES_COMMAND = "make 05_scheme_comparison PARAMS=\"-p tabular_csv ... -p knee_dir ... -p key_draws 3\""


@_table("schemes_real")
def schemes(results: Path) -> str:
    frame = _read(results, "real", "05_scheme_comparison.csv", SCHEMES_COMMAND)
    rows = pd.DataFrame({
        "data": frame["dataset"].map(lambda d: "table (osteoporosis.csv)" if d.endswith(".csv") else "knee X-rays"),
        "scheme": frame["scheme"],
        "regime": frame["label"],
        "accuracy": frame["accuracy"].map(lambda v: f"{v:.3f}"),
        "macro F1": frame["macro_f1"].map(lambda v: f"{v:.3f}"),
        "chance": frame["chance"].map(lambda v: f"{v:.3f}"),
        "encrypt s/item": frame["encrypt_s_per_item"].map(lambda v: f"{v:.1e}"),
        "expansion": frame["expansion"].map(lambda v: f"{v:,.0f}×"),
        "security bits": [f"{b}" if s else "none (deterministic)" if sc != "plain" else "—"
                          for b, s, sc in zip(frame["security_bits"], frame["semantically_secure"], frame["scheme"])],
    })
    return markdown(rows)


@_table("schemes_key_spread")
def scheme_spread(results: Path) -> str:
    frame = _read(results, "real", "05_key_spread.csv", SCHEMES_COMMAND)
    frame["row"] = frame["scheme"].map({"paillier": "Paillier", "rsa": "textbook RSA", "lwe": "LWE"}) + " " + \
        frame["regime"].where(frame["scheme"] != "rsa", "")
    frame["data"] = frame["dataset"].map(lambda d: "table" if d.endswith(".csv") else "knee")
    cells = frame.groupby(["row", "data"], sort=False)["accuracy"].agg(
        lambda a: f"{a.mean():.3f} ± {a.std(ddof=1):.3f} ({a.min():.3f}–{a.max():.3f})")
    rows = list(dict.fromkeys(frame["row"]))
    return markdown(pd.DataFrame({"deterministic row": [r.strip() for r in rows],
                                  "table: mean ± sd (min–max)": [cells.get((r, "table"), "") for r in rows],
                                  "knee: mean ± sd (min–max)": [cells.get((r, "knee"), "") for r in rows],
                                  "draws": [int((frame["row"] == r).sum() / frame["data"].nunique()) for r in rows]}))


# --- notebook 06: attacks -----------------------------------------------------------------------------

def attacks(results: Path, run: str) -> str:
    frame = _read(results, run, "06_attacks.csv", f"make 06_attacks DATA=../shared/data/{run}")
    rows = pd.DataFrame({
        "scheme": frame["scheme"], "regime": frame["regime"], "attacker sees": frame["input"],
        "attack": frame["attack"], "attacker uses": frame["attacker_uses"],
        "median SSIM": frame["ssim_median"].map(lambda v: f"{v:.3f}"),
        "exact images": frame["exact_rate"].map(lambda v: _pct(v, 0)),
    })
    return markdown(rows)


_table("covid2_attacks")(lambda results: attacks(results, "covid19_radiography_2class"))


# --- notebook 07: private inference -------------------------------------------------------------------

@_table("private_inference")
def private_inference(results: Path) -> str:
    rows = []
    for run, name in (("covid19_radiography_2class", "COVID vs Normal"),
                      ("covid19_radiography_3class", "COVID / Normal / Viral Pneumonia"),
                      ("pneumoniamnist", "PneumoniaMNIST")):
        frame = _read(results, run, "07_private_inference.csv",
                      f"make 07_private_inference DATA=../shared/data/{run} PARAMS=\"-p max_per_class 0\"")
        for _, r in frame.iterrows():
            rows.append({"data": name, "scheme": r["scheme"], "accuracy": _pct(r["accuracy"]),
                         "plain float head": _pct(r["plain_float_head_accuracy"]),
                         "mismatches vs plaintext head": f"{int(r['mismatches'])} / {int(r['images'])}",
                         "encrypt ms": f"{r['client_encrypt_ms']:.2f}", "server ms": f"{r['server_ms']:.2f}",
                         "decrypt ms": f"{r['client_decrypt_ms']:.3f}", "end to end ms": f"{r['end_to_end_ms']:.2f}",
                         "bytes up / down": f"{int(r['bytes_up']):,} / {int(r['bytes_down']):,}"})
    return markdown(pd.DataFrame(rows))


# --- notebook 08 and the private pipeline -------------------------------------------------------------

def _generic(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as written, floats to 4 significant digits (a table no one has laid out yet)."""
    return frame.apply(lambda c: c.map(lambda v: ("" if math.isnan(v) else f"{v:.4g}") if isinstance(v, float) else v))


def _all_matching(results: Path, name: str, command: str, columns: tuple[str, ...] = ()) -> str:
    """Every run's file `name` (``results/*/<name>``), in the order of their flat-layout names."""
    files = sorted((p for p in results.glob(f"*/{name}") if "_quick" not in p.parent.name),  # never published
                   key=lambda p: flat_name(p.parent.name, p.name))
    if not files:
        return f"*Not run yet: no `results/*/{name}` exists. `{command}` writes it.*"
    parts = []
    for path in files:
        frame = pd.read_csv(path)
        frame = frame[[c for c in columns if c in frame]] if columns else frame
        parts.append(f"`{_shown(path)}`\n\n{markdown(_generic(frame))}")
    return "\n\n".join(parts)


LADDER_COLUMNS = ("name", "accuracy", "accuracy_ci95", "mcnemar_p_vs_plain", "n_test", "mismatches_vs_twin",
                  "end_to_end_ms", "bytes_up", "security", "server_learns")
_table("ladder")(lambda results: _all_matching(results, "08_privacy_ladder.csv", "make 08_privacy_ladder DATA=...",
                                               LADDER_COLUMNS))

LADDER_DATASETS = (("covid19_radiography_2class", "COVID vs Normal"),
                   ("covid19_radiography_3class", "COVID / Normal / Viral Pneumonia"),
                   ("pneumoniamnist", "PneumoniaMNIST"))
LADDER_COST = "server CPU ms/image (COVID vs Normal, the test split as one batch)"
LADDER_RUNGS = ((0, "plain", "plain CNN (no protection)"),
                (1, "", "deterministic \"encryption\", best regime (NOT secure: the server reads the image)"),
                (2, "Paillier", "linear head on Paillier-encrypted features (112-bit)"),
                (2, "LWE", "linear head on LWE-encrypted features, PCA-32 (~128-bit)"),
                (3, "MLP", "MLP head on CKKS-encrypted features (128-bit)"),
                (4, "CNN", "CNN on CKKS-encrypted 28-px pixels (128-bit)"),
                (5, "trained", "head trained and run on CKKS ciphertexts (128-bit)"))


@_table("ladder_headline")
def ladder_headline(results: Path) -> str:
    """One row per rung, one column per dataset: accuracy over the whole test split, McNemar p vs plain."""
    frames = {run: _read(results, run, "08_privacy_ladder.csv",
                         f"make 08_privacy_ladder DATA=../shared/data/{run}") for run, _ in LADDER_DATASETS}
    rows = []
    for rung, key, label in LADDER_RUNGS:
        row = {"rung": f"{rung} {label}"}
        for run, name in LADDER_DATASETS:
            frame = frames[run]
            part = frame[(frame["rung"] == rung) & frame["name"].str.contains(key, regex=False)]
            if part.empty:
                row[name] = ""
                continue
            best = part.loc[part["accuracy"].idxmax()]
            p = best.get("mcnemar_p_vs_plain", float("nan"))
            row[name] = _pct(best["accuracy"]) + ("" if rung == 0 or pd.isna(p) else f" (p {p:.2g})")
            if rung >= 2 and name == LADDER_DATASETS[0][1]:
                row[LADDER_COST] = f"{best['server_ms']:.2g}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    n = ", ".join(f"{int(frames[run]['n_test'].max())}" for run, _ in LADDER_DATASETS)
    run = LADDER_DATASETS[0][0]
    batched = _read(results, run, "batched.csv", f"python bench/bench_batched_ckks.py --data ../shared/data/{run}")
    full = batched[batched["batch_size"] == batched["batch_size"].max()].set_index("rung")["amortized_ms_per_image"]
    single = _read(results, run, "single_image.csv",
                   f"python bench/bench_single_image.py --data ../shared/data/{run}")["latency_ms_median"].iloc[0]
    return (markdown(frame.fillna("")) +
            f"\n\nTest images: {n}. p: McNemar's exact test against plain on the same images. With full batches "
            f"of {int(batched['batch_size'].max()):,} images per ciphertext, the server's CPU per image falls to "
            f"{full.loc[3]:.2f} ms (rung 3) and {full.loc[4]:.2f} ms (rung 4); one image alone goes through rung 4 "
            f"in {single:.0f} ms (median, end to end).")

# --- notebook 10: the private pipeline; bench/bench_batched_ckks.py ----------------------------------------

PIPELINE_DATASETS = (("covid19_radiography_2class", "COVID vs Normal"),
                     ("covid19_radiography_3class", "COVID / Normal / Viral Pneumonia"))
PIPELINE_COMMAND = "make private_pipeline DATA=../shared/data/{run}"


def _pipeline(results: Path, run: str) -> pd.DataFrame:
    return _read(results, run, "10_private_pipeline.csv", PIPELINE_COMMAND.format(run=run))


@_table("private_pipeline_headline")
def private_pipeline_headline(results: Path) -> str:
    """Mean over split seeds: plain, the private pipeline, its clear twin, the gap next to the paper's."""
    rows = []
    for run, name in PIPELINE_DATASETS:
        frame = _pipeline(results, run)
        gap = 100 * (frame["private_accuracy"].mean() - frame["plain_accuracy"].mean())
        rows.append({"data (test split, mean over split seeds)": f"{name} ({len(frame)} seeds, "
                                                                 f"{int(frame['n_test'].iloc[0])} test images each)",
                     "plain MobileNetV2": _pct(frame["plain_accuracy"].mean()),
                     "private pipeline": _pct(frame["private_accuracy"].mean()),
                     "private − plain (the paper: −0.9)": f"{gap:+.1f} points",
                     "same head trained in the clear": _pct(frame["clear_trained_accuracy"].mean()),
                     "predictions ≠ twin": f"{int(frame['mismatches_vs_twin'].sum())} of {int(frame['n_test'].sum())}",
                     "server CPU, training": f"{frame['server_training_cpu_s'].mean() / 60:.1f} min",
                     "server, inference": f"{frame['inference_server_ms_per_image'].mean():.2f} ms/image"})
    return markdown(pd.DataFrame(rows))


@_table("private_pipeline")
def private_pipeline(results: Path) -> str:
    """Every split seed of every dataset, with the paired comparison against plain."""
    parts = []
    for run, name in PIPELINE_DATASETS:
        frame = _pipeline(results, run)
        rows = pd.DataFrame({
            "split seed": frame["split_seed"],
            "plain": frame["plain_accuracy"].map(_pct),
            "private (95% CI)": [f"{_pct(a)} ({_pct(lo)}–{_pct(hi)})" for a, lo, hi in
                                 zip(frame["private_accuracy"], frame["private_ci95_low"], frame["private_ci95_high"])],
            "trained in the clear": frame["clear_trained_accuracy"].map(_pct),
            "McNemar p vs plain": frame["mcnemar_p_vs_plain"].map(lambda v: f"{v:.2f}"),
            "only private right / only plain right": [f"{a} / {b}" for a, b in
                                                      zip(frame["private_only_correct"], frame["plain_only_correct"])],
            "≠ twin": frame["mismatches_vs_twin"],
            "smallest margin": frame["min_abs_margin"].map(lambda v: f"{v:.3f}"),
            "steps": frame["training_steps"],
            "server CPU training": frame["server_training_cpu_s"].map(lambda v: f"{v:.0f} s"),
            "bytes (features up; per training)": [f"{u / 2**20:.0f} MiB; {(a + b) / 2**30:.2f} GiB" for u, a, b in
                                                  zip(frame["features_upload_bytes"], frame["training_bytes_up"],
                                                      frame["training_bytes_down"])],
            "inference (server / client ms per image)": [
                f"{s:.2f} / {c:.2f}" for s, c in zip(frame["inference_server_ms_per_image"],
                                                      frame["inference_client_ms_per_image"])],
        })
        parts.append(f"**{name}** (`results/{run}/10_private_pipeline.csv`; {int(frame['n_train'].iloc[0])} "
                     f"training images, {int(frame['n_features'].iloc[0])} features)\n\n{markdown(rows)}")
    return "\n\n".join(parts)


@_table("private_pipeline_cost")
def private_pipeline_cost(results: Path) -> str:
    """bench/bench_private_pipeline.py: one training step against n, batched inference against the batch."""
    parts = []
    for run, name in PIPELINE_DATASETS:
        command = f"python bench/bench_private_pipeline.py --data ../shared/data/{run}"
        training = _read(results, BENCH, f"private_pipeline_{run}_training.csv", command)
        inference = _read(results, BENCH, f"private_pipeline_{run}_inference.csv", command)
        steps = pd.DataFrame({"training images": training["n_train"],
                              "server s per step": training["server_s_per_step"].map(lambda v: f"{v:.2f}"),
                              "key holder s per step": training["client_s_per_step"].map(lambda v: f"{v:.2f}"),
                              "MiB per step": (training["bytes_per_step"] / 2**20).map(lambda v: f"{v:.1f}")})
        batches = pd.DataFrame({
            "batch": inference["batch_size"],
            "server ms/image": inference["amortized_server_ms_per_image"].map(lambda v: f"{v:.3f}"),
            "client ms/image (encrypt + decrypt)": [f"{e + d:.2f}" for e, d in zip(
                inference["client_encrypt_ms_per_image"], inference["client_decrypt_ms_per_image"])],
            "backbone ms/image (1 thread)": inference["backbone_ms_per_image"].map(lambda v: f"{v:.0f}"),
            "latency ms": inference["latency_ms"].map(lambda v: f"{v:.0f}"),
            "KiB up / down per image": [f"{u / len_ / 1024:.0f} / {d / len_ / 1024:.1f}" for u, d, len_ in
                                        zip(inference["bytes_up"], inference["bytes_down"], inference["batch_size"])],
            "≠ twin": inference["mismatches_vs_twin"]})
        keys = inference["evaluation_key_bytes"].iloc[0] / 2**20
        parts.append(f"**{name}**: one training step (the encrypted logits and gradient of the whole set), "
                     f"evaluation keys {keys:.1f} MiB\n\n{markdown(steps)}\n\nBatched inference\n\n{markdown(batches)}")
    return "\n\n".join(parts)


@_table("batched_ckks")
def batched_ckks(results: Path) -> str:
    """bench/bench_batched_ckks.py: rungs 3 and 4 over the whole test split, cost against the batch size."""
    parts = []
    for run, name in PIPELINE_DATASETS:
        frame = _read(results, run, "batched.csv", f"python bench/bench_batched_ckks.py --data ../shared/data/{run}")
        rows = pd.DataFrame({
            "rung": frame["rung"], "batch": frame["batch_size"],
            "server ms/image": frame["amortized_ms_per_image"].map(lambda v: f"{v:.2f}"),
            "latency s (one batch, end to end)": (frame["latency_ms"] / 1000).map(lambda v: f"{v:.1f}"),
            "KiB up per image": (frame["bytes_up_per_image"] / 1024).map(lambda v: f"{v:.0f}"),
            "accuracy (twin)": [f"{_pct(a)} ({_pct(t)})" for a, t in zip(frame["accuracy"], frame["twin_accuracy"])],
            "≠ twin": [f"{m} of {n}" for m, n in zip(frame["mismatches_vs_twin"], frame["n_test"])]})
        models = "; ".join(f"rung {r}: {m}" for r, m in
                           frame[["rung", "model"]].drop_duplicates().itertuples(index=False))
        precision = "; ".join(f"rung {r}: largest score error {e:.1e}, smallest twin margin {m:.1e}" for r, e, m in
                              frame[["rung", "max_score_error", "min_twin_margin"]].drop_duplicates("rung")
                              .itertuples(index=False))
        parts.append(f"**{name}** ({models})\n\n{markdown(rows)}\n\nOver the whole test split: {precision}.")
    return "\n\n".join(parts)


@_table("single_image")
def single_image(results: Path) -> str:
    """bench/bench_single_image.py: rung 4 one image at a time, every test image, latency split by party."""
    rows = []
    for run, name in PIPELINE_DATASETS:
        frame = _read(results, run, "single_image.csv",
                      f"python bench/bench_single_image.py --data ../shared/data/{run}")
        for r in frame.itertuples(index=False):
            rows.append({"data": name, "test images": r.n_test,
                         "latency ms, median (max)": f"{r.latency_ms_median:.0f} ({r.latency_ms_max:.0f})",
                         "client encrypt / server / client decrypt ms":
                             f"{r.client_encrypt_ms:.1f} / {r.server_ms:.1f} / {r.client_decrypt_ms:.1f}",
                         "KiB up / down": f"{r.bytes_up_per_image / 1024:.0f} / {r.bytes_down_per_image / 1024:.0f}",
                         "evaluation keys (once)": f"{r.evaluation_key_bytes / 2**20:.1f} MiB",
                         "accuracy (twin)": f"{_pct(r.accuracy)} ({_pct(r.twin_accuracy)})",
                         "≠ twin": f"{r.mismatches_vs_twin} of {r.n_test}",
                         "smallest twin margin / largest score error": f"{r.min_twin_margin:.1e} / "
                                                                        f"{r.max_score_error:.1e}"})
    return markdown(pd.DataFrame(rows))


# --- benchmarks ---------------------------------------------------------------------------------------

@_table("paillier_speed")
def paillier_speed(results: Path) -> str:
    path = run_dir(results, BENCH) / "paillier.json"
    if not path.is_file():
        raise _Missing(path, "make bench")
    bench = json.loads(path.read_text())
    rows = pd.DataFrame({"operation (one core)": list(bench["per_second"]),
                         "per second": [f"{v:,.0f}" for v in bench["per_second"].values()],
                         "vs phe.encrypt": [f"{bench['speedup_vs_phe'][k]:.1f}×" for k in bench["per_second"]]})
    return markdown(rows, align_right=("per second", "vs phe.encrypt")) + \
        f"\n\n{bench['bits']}-bit key; a whole {bench['image_size']}×{bench['image_size']} image encrypted " \
        f"(randomized) on {bench['cores']} cores: {bench['seconds_per_image_all_cores']:.2f} s."


def _json(results: Path, run: str, name: str, command: str):
    path = run_dir(results, run) / name
    if not path.is_file():
        raise _Missing(path, command)
    return json.loads(path.read_text())


@_table("private_inference_bench")
def private_inference_bench(results: Path) -> str:
    """``bench/bench_private_inference.py``: the same steps on random features, one core."""
    rows = pd.DataFrame(_json(results, BENCH, "private_inference.json", "make bench"))
    return markdown(pd.DataFrame({
        "scheme": rows["scheme"], "features": rows["features"], "images": rows["images"],
        "mismatches": rows["mismatches"], "encrypt ms": rows["client_encrypt_ms"].map(lambda v: f"{v:.2f}"),
        "server ms": rows["server_ms"].map(lambda v: f"{v:.2f}"),
        "decrypt ms": rows["client_decrypt_ms"].map(lambda v: f"{v:.3f}"),
        "end to end ms": rows["end_to_end_ms"].map(lambda v: f"{v:.2f}"),
        "bytes up / down": [f"{u:,} / {d:,}" for u, d in zip(rows["bytes_up"], rows["bytes_down"])]}))


@_table("schemes_speed")
def schemes_speed(results: Path) -> str:
    """``bench/bench_schemes.py``: encryption and decryption cost of every scheme and regime, one core."""
    bench = _json(results, BENCH, "schemes.json", "make bench")
    rows = pd.DataFrame(bench["rows"])
    table = markdown(pd.DataFrame({
        "scheme": rows["scheme"], "regime": rows["label"],
        "encrypt µs/element": rows["encrypt_us_per_element"].map(lambda v: f"{v:,.3g}"),
        "decrypt µs/element": rows["decrypt_us_per_element"].map(lambda v: f"{v:,.2f}"),
        "encrypt s/image": rows["encrypt_s_per_image"].map(lambda v: f"{v:.3g}"),
        "decrypt s/image": rows["decrypt_s_per_image"].map(lambda v: f"{v:.3g}"),
        "bytes per plaintext byte": rows["bytes_per_plaintext_byte"],
        "security bits": rows["security_bits"], "post-quantum": rows["post_quantum"].map({True: "yes", False: "no"})}))
    return f"{table}\n\n{bench['meta']['image_size']}×{bench['meta']['image_size']} images; {bench['meta']['notes']}."


DASK_COMMAND = "venv/bin/python bench/bench_dask.py --data-dir ../shared/data/covid19_radiography_2class"


@_table("dask_scaling")
def dask_scaling(results: Path) -> str:
    frame = _read(results, BENCH, "dask.csv", DASK_COMMAND)
    rows = pd.DataFrame({"workers": frame["workers"], "wall s": frame["wall_s"].map(lambda v: f"{v:.1f}"),
                         "encryptions/s": frame["throughput_enc_per_s"].map(lambda v: f"{v:,.0f}"),
                         "speed-up": frame["speedup"].map(lambda v: f"{v:.2f}×"),
                         "per-core enc/s": frame["rate_per_core_enc_per_s"].map(lambda v: f"{v:,.0f}"),
                         "overhead, % of task time": frame["overhead_pct_of_task"].map(lambda v: f"{v:.2f} %"),
                         "scheduling, % of task time": frame["scheduling_pct_of_task"].map(lambda v: f"{v:.2f} %")})
    return markdown(rows, align_right=tuple(c for c in rows.columns))


@_table("dask_projection")
def dask_projection(results: Path) -> str:
    frame = _read(results, BENCH, "dask_projection.csv", DASK_COMMAND)
    rows = pd.DataFrame({"workload": frame["workload"], "cores": frame["cores"], "tasks": frame["tasks"],
                         "core-hours": frame["core_hours"].map(lambda v: f"{v:.1f}"),
                         "compute s": frame["waves_s"].map(lambda v: f"{v:,.0f}"),
                         "network s": frame["transfer_s"].map(lambda v: f"{v:,.0f}"),
                         "projected": frame["projected_min"].map(lambda v: f"{v:.1f} min"),
                         "bound": frame["bound"]})
    return markdown(rows)


@_table("synthetic_check")
def synthetic_check(results: Path) -> str:
    """``bench/check_synthetic_default.py``: test accuracy per regime and seed on the synthetic default."""
    frame = _read(results, BENCH, "synthetic_default.csv",
                  "venv/bin/python bench/check_synthetic_default.py --csv results/bench/synthetic_default.csv")
    table = frame.pivot(index="regime", columns="seed", values="test_accuracy")
    table = table.loc[list(dict.fromkeys(frame["regime"]))]
    rows = pd.DataFrame({"model": table.index,
                         **{f"seed {s}": table[s].map(lambda v: f"{v:.2f}") for s in table.columns},
                         "mean": table.mean(axis=1).map(lambda v: f"{v:.3f}"),
                         "test images": frame.groupby("regime", sort=False)["n_test"].first().loc[table.index]})
    return markdown(rows)


AUDIT_COLUMNS = ("scheme", "family", "accuracy", "chance", "deterministic", "advantage", "best_attack", "attack_ssim",
                 "entropy_bits", "npcr_percent", "uaci_percent", "stats_look_ideal", "verdict")
_table("claim_audit")(lambda results: _all_matching(results, "09_claim_audit.csv", "make 09_claim_audit",
                                                    AUDIT_COLUMNS))
