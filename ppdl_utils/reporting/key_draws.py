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


def collect_draws(results_dir: "str | Path", runs: Iterable[str]) -> pd.DataFrame:
    """One row per (run, model): key draw, split seed, test accuracy, the plain accuracy of the same
    split seed, the gap, and the rendering statistics of the regime under that key."""
    rows = []
    for run in runs:
        for label, r in load_records(results_dir, run, with_tables=False).items():
            rows.append({"run": run, "label": label, "regime": r.regime, "key_draw": r.key_draw,
                         "split_seed": r.split_seed, "test_accuracy": r.test_accuracy, "n_test": r.summary.n_test,
                         "wall_seconds": r.train.wall_seconds, **r.cipher_stats})
    if not rows:
        raise RecordError(f"no key-draw runs in {results_dir}")
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


def spread_predicts_accuracy(draws: pd.DataFrame) -> pd.DataFrame:
    """Per regime (bare models): Spearman correlation across draws between each rendering statistic
    and the test accuracy (negative for ``merge_spread`` means: the more distant the merged gray
    levels, the lower the accuracy); with several regimes, one more row pools them, against the gap
    to the plain model of the same split."""
    rows = {}
    stats = [c for c in ("distinct_values", "merged_levels", "merge_spread") if c in draws]

    def rho(group: pd.DataFrame, target: str) -> dict:
        return {f"rho({s}, accuracy)": group[s].corr(group[target], method="spearman")
                if group[s].nunique() > 1 else np.nan for s in stats} | {"draws": len(group)}

    bare = draws[~draws["label"].str.contains(r"\+|plain")]
    for label, group in bare.groupby("label", sort=False):
        rows[label] = rho(group, "test_accuracy")
    if bare["label"].nunique() > 1:  # a few draws per regime say little; pooled, the gap to plain is comparable
        rows["bare regimes pooled (gap to plain)"] = rho(bare, "gap_points")
    return pd.DataFrame(rows).T


def plot_draws(draws: pd.DataFrame, title: str = "") -> plt.Figure:
    """One point per (key draw, split seed) and model; plain of each split as a dashed line."""
    labels = list(dict.fromkeys(draws["label"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.6))
    rng = np.random.default_rng(0)  # horizontal jitter only, so that equal accuracies stay visible
    markers = dict(zip(sorted(draws["split_seed"].dropna().unique()), "os^Dv<>"))
    for x, label in enumerate(labels):
        group = draws[draws["label"] == label]
        for _, row in group.iterrows():
            ax.scatter(x + rng.uniform(-0.15, 0.15), row["test_accuracy"], s=22,
                       marker=markers.get(row["split_seed"], "o"), color=f"C{int(row['key_draw'] or 0) % 10}")
        ax.hlines(group["test_accuracy"].mean(), x - 0.3, x + 0.3, color="k", lw=1)
    for seed, acc in draws[draws["label"] == "plain"].groupby("split_seed")["test_accuracy"].first().items():
        ax.axhline(acc, color="0.4", ls="--", lw=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "test accuracy per key draw (colour) and split seed (marker); bar = mean; "
                 "dashed = plain", fontsize=9)
    fig.tight_layout()
    return fig
