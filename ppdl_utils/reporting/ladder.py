"""The privacy ladder: every level of protection measured on one dataset, one row each.

Rungs 0-1 come from notebook 03's run records (plain, and the papers' deterministic "encryption",
with the median SSIM of notebook 06's strongest attack); rung 2 from notebook 07's private
inference CSV; rungs 3-5 are measured by notebook 08 (:class:`~ppdl_utils.learning.encrypted_common.LadderRow`).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ppdl_utils.records import RunRecord

COLUMNS = ["rung", "name", "accuracy", "accuracy_ci95", "macro_f1", "n_test", "encrypt_ms", "server_ms",
           "decrypt_ms", "bytes_up", "bytes_down", "peak_memory_mb", "context_bytes", "security", "server_learns",
           "mismatches_vs_twin"]
#: kept when a study measured them: the twins' accuracies, one batch's latency, the training cost of rung 5
EXTRA_COLUMNS = ["twin_accuracy", "relu_twin_accuracy", "batch_latency_ms", "training_server_s", "training_steps"]


def _ci(accuracy: float, n: int) -> str:
    from ppdl_utils.records import wilson_interval

    if not n or not np.isfinite(accuracy):
        return ""
    low, high = wilson_interval(int(round(accuracy * n)), int(n))
    return f"{low:.1%}–{high:.1%}"


def record_rows(records: Mapping[str, RunRecord], attack_ssim: Mapping[str, float] | None = None) -> list[dict]:
    """Rung 0 (plain) and rung 1 (each deterministic regime, bare or input-table) from run records;
    the server's cost is not measured there (training, not inference), so latency stays empty."""
    rows = []
    for label, r in records.items():
        if r.regime == "randomized":
            continue
        rung = 0 if r.regime == "plain" else 1
        ssim = (attack_ssim or {}).get(r.regime)
        learns = "the image" if rung == 0 else \
            (f"the image (attack SSIM {ssim:.2f})" if ssim is not None else "the image, up to a substitution")
        rows.append({"rung": rung, "name": f"rung {rung}: {label} (notebook 03)", "accuracy": r.test_accuracy,
                     "n_test": r.summary.n_test, "macro_f1": r.summary.macro_f1,
                     "security": "none" if rung == 0 else "none: deterministic, NOT secure",
                     "server_learns": learns, "mismatches_vs_twin": np.nan})
    return rows


_SECURITY_07 = {"Paillier": "112-bit classical (Paillier 2048, DCR), randomized",
                "LWE": "~128-bit classical (LWE n=1024, log q=27), randomized"}


def private_inference_rows(csv: "str | Path") -> list[dict]:
    """Rung 2 from notebook 07's ``<run>/07_private_inference.csv`` (one row per scheme)."""
    frame = pd.read_csv(csv)
    rows = []
    for _, row in frame.iterrows():
        rows.append({"rung": 2, "name": f"rung 2: linear head, {row['scheme']} (notebook 07)",
                     "accuracy": row.get("accuracy", np.nan), "n_test": row.get("images", np.nan),
                     "macro_f1": row.get("macro_f1", np.nan),
                     "encrypt_ms": row.get("client_encrypt_ms"), "server_ms": row.get("server_ms"),
                     "decrypt_ms": row.get("client_decrypt_ms"), "bytes_up": row.get("bytes_up"),
                     "bytes_down": row.get("bytes_down"), "security": _SECURITY_07.get(row["scheme"], "randomized"),
                     "server_learns": "nothing about the features (DCR / LWE)",
                     "mismatches_vs_twin": row.get("mismatches", np.nan)})
    return rows


def ladder_table(rows: Iterable[dict]) -> pd.DataFrame:
    """One table, rungs in order, with the accuracy's 95% Wilson interval."""
    frame = pd.DataFrame(list(rows))
    for column in COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    frame["accuracy_ci95"] = [_ci(a, n) for a, n in zip(frame["accuracy"], frame["n_test"].fillna(0))]
    frame["end_to_end_ms"] = frame[["encrypt_ms", "server_ms", "decrypt_ms"]].sum(axis=1, min_count=1)
    extra = [c for c in EXTRA_COLUMNS if c in frame]
    return frame[COLUMNS + ["end_to_end_ms"] + extra].sort_values("rung", kind="stable").reset_index(drop=True)


def point_label(row: pd.Series) -> str:
    """``"3 MLP head on encrypted features · 128-bit"``: the rung, what it is, and its security in short."""
    name = re.sub(r"^rung \d+: ", "", str(row["name"]))
    security = str(row["security"])
    bits = re.search(r"~?\d+-bit", security)
    short = "NOT secure" if security.startswith("none") and "NOT" in security else \
        ("no protection" if security.startswith("none") else (bits.group(0) if bits else security[:20]))
    return f"{row['rung']} {name} · {short}"


def plot_ladder(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Accuracy (95% Wilson interval as error bars) against latency per image (log axis), each point
    labelled with its rung and security.  Rungs 0-1 have no encrypted computation to time (the server
    reads the image): they sit in a band at the left edge marked "no HE", not at an invented latency."""
    from ppdl_utils.records import wilson_interval

    fig, ax = plt.subplots(figsize=(10, 5))
    timed = table["end_to_end_ms"].dropna()
    left = 10 ** math.floor(math.log10(max(timed.min(), 1e-3))) / 10 if len(timed) else 1e-2
    placed: list[tuple[float, float]] = []  # label anchors so far, to step a label clear of its neighbours
    y_span = max(float(np.ptp(table["accuracy"])), 0.05)
    styles = {"secure": ("o", "secure (semantically, under its assumption)"), "none": ("s", "no protection"),
              "broken": ("x", "deterministic: NOT secure")}
    seen = set()
    for _, row in table.sort_values("accuracy", ascending=False).iterrows():
        x = row["end_to_end_ms"] if np.isfinite(row["end_to_end_ms"]) else left
        security = str(row["security"])
        kind = "broken" if "NOT" in security else ("none" if security.startswith("none") else "secure")
        n = int(row["n_test"]) if np.isfinite(row["n_test"]) else 0
        low, high = wilson_interval(int(round(row["accuracy"] * n)), n) if n else (row["accuracy"],) * 2
        marker, label = styles[kind]
        below, above = max(row["accuracy"] - low, 0.0), max(high - row["accuracy"], 0.0)  # float noise at 0 / 1
        ax.errorbar(x, row["accuracy"], yerr=[[below], [above]], fmt=marker,
                    color=f"C{int(row['rung'])}", ms=6, capsize=2, lw=0.8,
                    label=label if kind not in seen else None)
        seen.add(kind)
        near = sum(abs(math.log10(x) - px) < 2.2 and abs(row["accuracy"] - py) < 0.05 * y_span for px, py in placed)
        placed.append((math.log10(x), row["accuracy"]))
        # a label runs about two decades to the right: a point there at the same height pushes it to the left
        crowded = np.isfinite(row["end_to_end_ms"]) and any(
            0 < math.log10(ox) - math.log10(x) < 2.5 and abs(oy - row["accuracy"]) < 0.05 * y_span
            for ox, oy in zip(table["end_to_end_ms"].fillna(left), table["accuracy"]))
        ax.annotate(point_label(row), (x, row["accuracy"]), fontsize=6, xytext=(-6 if crowded else 6, 2 - 8 * near),
                    textcoords="offset points", ha="right" if crowded else "left")
    ax.axvspan(left / 2, left * 2, color="0.92", zorder=0)
    ax.text(left, ax.get_ylim()[0], "no HE", ha="center", va="bottom", fontsize=7, color="0.3")
    ax.set_xscale("log")
    ax.set_xlim(left / 2, 10 ** (2.5 + math.log10(max(timed.max(), left) if len(timed) else left)))  # room for labels
    ax.set_xlabel("client encrypt + server + client decrypt, ms per image (log; batched rungs amortized over the "
                  "batch)")
    ax.set_ylabel("test accuracy (95% CI)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or "the privacy ladder: accuracy vs latency", fontsize=9)
    fig.tight_layout()
    return fig


def attack_ssim(leakage: pd.DataFrame) -> dict[str, float]:
    """``{regime: median SSIM of the strongest attack}`` from notebook 06's leakage table (Paillier rows)."""
    rows = leakage[leakage["scheme"] == "Paillier"]
    return {str(regime).split()[0]: float(ssim) for regime, ssim in zip(rows["regime"], rows["attack_ssim_median"])
            if np.isfinite(ssim)}
