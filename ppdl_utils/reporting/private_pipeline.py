"""The paper's price, privately: plain, the paper's deterministic regimes (NOT secure) and the private
pipeline on the same test images, in one table and one figure."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ppdl_utils.outputs import run_dir
from ppdl_utils.records import RunRecord

#: The paper's own numbers (COVID-19 Radiography, 4 classes): plain vs "encrypted" MobileNetV2.
PAPER_PLAIN, PAPER_ENCRYPTED = 0.942, 0.933


def price_table(pipeline: pd.DataFrame, records: Mapping[str, RunRecord] | None = None,
                attack_ssim: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per model: accuracy (mean over split seeds where there are several), its gap to plain,
    what the server sees and whether that is secure."""
    plain = pipeline["plain_accuracy"].mean()
    seeds = ", ".join(str(s) for s in pipeline["split_seed"])
    rows = [{"model": f"plain MobileNetV2 (split seeds {seeds})", "accuracy": plain,
             "server_sees": "the images", "secure": "no protection", "attack_ssim": np.nan}]
    for label, record in (records or {}).items():
        if record.regime in ("plain", "randomized"):
            continue
        rows.append({"model": f"{label} (the paper's deterministic regime, split seed 0)",
                     "accuracy": record.test_accuracy, "server_sees": "substitution-enciphered images",
                     "secure": "NOT secure: read back by notebook 06", "attack_ssim": (attack_ssim or {}).get(
                         record.regime, np.nan)})
    rows.append({"model": "the same head trained in the clear (twin)",
                 "accuracy": pipeline["clear_trained_accuracy"].mean(),
                 "server_sees": "(reference: not private)", "secure": "", "attack_ssim": np.nan})
    rows.append({"model": f"private pipeline (split seeds {seeds})", "accuracy": pipeline["private_accuracy"].mean(),
                 "server_sees": "CKKS ciphertexts only (training and inference)",
                 "secure": "128-bit classical (RLWE, HE standard)", "attack_ssim": np.nan})
    table = pd.DataFrame(rows)
    table["gap_to_plain_points"] = 100 * (plain - table["accuracy"])
    return table


def plot_price(table: pd.DataFrame, pipeline: pd.DataFrame, title: str) -> plt.Figure:
    """Accuracy per model; the private pipeline's split seeds as points; the paper's gap as a band."""
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(table) + 2.0))
    y = np.arange(len(table))[::-1]
    colors = ["0.35" if m.startswith("plain") else "tab:red" if "NOT" in s else
              "tab:green" if m.startswith("private") else "0.75" for m, s in zip(table["model"], table["secure"])]
    ax.barh(y, 100 * table["accuracy"], color=colors, height=0.6)
    private_row = y[table["model"].str.startswith("private pipeline")][0]
    ax.scatter(100 * pipeline["private_accuracy"], np.full(len(pipeline), private_row), color="black", zorder=3,
               s=14, label="private pipeline, one split seed each")
    plain = 100 * table["accuracy"].iloc[0]
    ax.axvspan(plain - 100 * (PAPER_PLAIN - PAPER_ENCRYPTED), plain, color="tab:orange", alpha=0.2,
               label=f"the paper's price: {100 * (PAPER_PLAIN - PAPER_ENCRYPTED):.1f} points below plain")
    for yi, (acc, ssim) in zip(y, zip(table["accuracy"], table["attack_ssim"])):
        note = f"{100 * acc:.1f}%" + (f"  (attack SSIM {ssim:.2f})" if np.isfinite(ssim) else "")
        right = max(acc, pipeline["private_accuracy"].max()) if yi == private_row else acc  # clear of the dots
        ax.text(100 * right + 0.5, yi, note, va="center", fontsize=8)
    ax.set_yticks(y, [m if len(m) < 60 else m[:57] + "..." for m in table["model"]], fontsize=8)
    low = max(0.0, 100 * np.nanmin(table["accuracy"]) - 10)
    ax.set_xlim(low, 100 + (100 - low) * 0.3)  # room for the labels right of the bars
    ax.set_xticks([t for t in ax.get_xticks() if low <= t <= 100])
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def redraw(run: str, results_dir: "str | Path" = "results", figures_dir: "str | Path" = "figures") -> Path:
    """Notebook 10's figure again from its two results files (after a change of this drawing code)."""
    from ppdl_utils.reporting.figures import save_figure

    pipeline = pd.read_csv(run_dir(results_dir, run) / "10_private_pipeline.csv")
    price = pd.read_csv(run_dir(results_dir, run) / "10_private_pipeline_price.csv", keep_default_na=False,
                        na_values={"accuracy": [""], "attack_ssim": [""], "gap_to_plain_points": [""]})
    title = f"data: {run}: the paper's price, privately"
    return save_figure(plot_price(price, pipeline, title), "10_private_pipeline", figures_dir, run=run,
                       source=f"data: {run}")


if __name__ == "__main__":  # python -m ppdl_utils.reporting.private_pipeline RUN [RUN ...]
    import sys

    for name in sys.argv[1:]:
        print(redraw(name))
