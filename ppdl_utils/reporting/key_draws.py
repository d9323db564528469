"""Every "encrypted" accuracy as a distribution over key draws and split seeds (``make key_draws``).

A deterministic regime is a substitution drawn at random: the key (and the secret table or fixed r)
decides which gray levels the ``c mod 256`` rendering merges, and the split seed which images are
tested.  One number per regime describes one draw; these functions read every draw's run records
and report, per model: mean ± sd, min–max, the gap to plain *of the same split*, and the share of
draws within 2 points of plain -- plus whether the rendering statistics predict the accuracy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ppdl_utils.records import RecordError, load_records

WITHIN = 0.02  # "within 2 points of plain"


#: what must be equal for runs to be draws of one recipe (a record's ``settings`` are compared where
#: both runs recorded them: older records lack them)
RECIPE_FIELDS = ("image_size", "epochs", "architecture", "weights", "bn_momentum", "renderer", "key_bits", "quick")
RECIPE_SETTINGS = ("lr", "batch_size", "schedule", "warmup_epochs")


def _check_same_recipe(records: list, first) -> None:
    for r in records:
        if Path(r.data).name != Path(first.data).name:  # the folder's name: the same data may move
            raise RecordError(f"run {r.run} ({r.label}) is on data {r.data} but run {first.run} on {first.data}: "
                              "not draws of one recipe")
        for name in RECIPE_FIELDS:
            if getattr(r, name) != getattr(first, name):
                raise RecordError(f"run {r.run} ({r.label}) has {name}={getattr(r, name)!r} but run {first.run} "
                                  f"has {getattr(first, name)!r}: not draws of one recipe")
        for name in RECIPE_SETTINGS:
            if name in r.settings and name in first.settings and r.settings[name] != first.settings[name]:
                raise RecordError(f"run {r.run} ({r.label}) was trained with {name}={r.settings[name]!r} but run "
                                  f"{first.run} with {first.settings[name]!r}: not draws of one recipe")


def collect_draws(results_dir: "str | Path", runs: Iterable[str]) -> pd.DataFrame:
    """One row per (run, model) of every run (randomized models left out: they are not a draw of a
    substitution): the key (fingerprint) and split seed, test accuracy, the plain accuracy of the
    same split seed, the gap, and the rendering statistics of the regime under that key.

    Runs made before ``make key_draws`` (no ``key_draw``/``split_seed`` recorded) count when their
    recipe is the same: their split seed is their seed, their key is told apart by its fingerprint.

    Raises:
        RecordError: no run found, or runs of different recipes (the field is named).
    """
    records = [r for run in runs for r in load_records(results_dir, run, with_tables=False).values()
               if r.regime != "randomized"]
    if not records:
        raise RecordError(f"no key-draw runs in {results_dir}")
    _check_same_recipe(records, records[0])
    keys = list(dict.fromkeys(r.key_fingerprint for r in records))
    rows = [{"run": r.run, "label": r.label, "regime": r.regime, "key": r.key_fingerprint,
             "key_draw": r.key_draw, "key_index": keys.index(r.key_fingerprint),
             "split_seed": r.seed if r.split_seed is None else r.split_seed, "test_accuracy": r.test_accuracy,
             "n_test": r.summary.n_test, "wall_seconds": r.train.wall_seconds, **r.cipher_stats} for r in records]
    frame = pd.DataFrame(rows)
    plain = frame[frame["label"] == "plain"].groupby("split_seed")["test_accuracy"].first()
    frame["plain_accuracy"] = frame["split_seed"].map(plain)
    frame["gap_points"] = 100 * (frame["test_accuracy"] - frame["plain_accuracy"])
    return frame


def distribution(draws: pd.DataFrame) -> pd.DataFrame:
    """Per model: draws, mean ± sd, min–max of the test accuracy, mean gap to plain (same split) and
    the share of draws within 2 points of plain."""
    def summary(group: pd.DataFrame) -> pd.Series:
        acc = group["test_accuracy"]
        return pd.Series({"draws": len(acc), "mean": acc.mean(), "sd": acc.std(ddof=1) if len(acc) > 1 else np.nan,
                          "min": acc.min(), "max": acc.max(), "mean gap (points)": group["gap_points"].mean(),
                          "within 2 points of plain": (group["gap_points"] >= -100 * WITHIN).mean()})
    order = list(dict.fromkeys(draws["label"]))
    return draws.groupby("label", sort=False).apply(summary, include_groups=False).loc[order]


def bare_models(draws: pd.DataFrame) -> pd.DataFrame:
    """The rows of deterministic models without the seriation-started input layer (no plain)."""
    return draws[~draws["label"].str.contains(r"\+|plain")]


def spread_predicts_accuracy(draws: pd.DataFrame) -> pd.DataFrame:
    """Per regime (bare models): Spearman correlation across draws between each rendering statistic
    and the test accuracy (negative for ``merge_spread`` means: the more distant the merged gray
    levels, the lower the accuracy); with several regimes, one more row pools them, against the gap
    to the plain model of the same split."""
    rows = {}
    stats = [c for c in ("distinct_values", "merged_levels", "merge_spread", "level_jump") if c in draws]

    def rho(group: pd.DataFrame, target: str) -> dict:
        return {f"rho({s}, accuracy)": group[s].corr(group[target], method="spearman")
                if group[s].nunique() > 1 else np.nan for s in stats} | {"draws": len(group)}

    bare = bare_models(draws)
    for label, group in bare.groupby("label", sort=False):
        rows[label] = rho(group, "test_accuracy")
    if bare["label"].nunique() > 1:  # a few draws per regime say little; pooled, the gap to plain is comparable
        rows["bare regimes pooled (gap to plain)"] = rho(bare, "gap_points")
    return pd.DataFrame(rows).T


def attach_rendering_stats(draws: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """The draws with rendering statistics measured afterwards (``bench/key_draw_rendering.py``: one
    row per key fingerprint and regime) filled in where the run records lack them."""
    measured = stats.set_index(["key", "regime"])
    out = draws.copy()
    for column in measured.columns:
        found = [measured[column].get((k, r), np.nan) for k, r in zip(out["key"], out["regime"])]
        out[column] = out[column].fillna(pd.Series(found, index=out.index)) if column in out else found
    return out


def plot_draws(draws: pd.DataFrame, title: str = "") -> plt.Figure:
    """One point per (key, split seed) and model (colour: the key); plain of each split as a dashed line."""
    labels = list(dict.fromkeys(draws["label"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.6))
    rng = np.random.default_rng(0)  # horizontal jitter only, so that equal accuracies stay visible
    markers = dict(zip(sorted(draws["split_seed"].dropna().unique()), "os^Dv<>"))
    for x, label in enumerate(labels):
        group = draws[draws["label"] == label]
        for _, row in group.iterrows():
            ax.scatter(x + rng.uniform(-0.15, 0.15), row["test_accuracy"], s=22,
                       marker=markers.get(row["split_seed"], "o"), color=f"C{int(row['key_index']) % 10}")
        ax.hlines(group["test_accuracy"].mean(), x - 0.3, x + 0.3, color="k", lw=1)
    for seed, acc in draws[draws["label"] == "plain"].groupby("split_seed")["test_accuracy"].first().items():
        ax.axhline(acc, color="0.4", ls="--", lw=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "test accuracy per key draw (colour) and split seed (marker); bar = mean; "
                 "dashed = plain", fontsize=9)
    fig.tight_layout()
    return fig
