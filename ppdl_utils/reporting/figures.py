"""Plot helpers shared by the notebooks; every figure names its data source."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ppdl_utils.outputs import figure_path

# characters of an 8-9 pt label that fit across one inch (measured on DejaVu Sans, the default)
CHARS_PER_INCH = 15


def wrap_label(label: str, width_inches: float) -> str:
    """`label` broken into lines that fit `width_inches` (existing line breaks are kept)."""
    width = max(8, int(width_inches * CHARS_PER_INCH))
    lines = []
    for line in label.splitlines() or [""]:
        # "fixed_r (deterministic, NOT secure)": break before the parenthesis first, then fill
        parts = line.replace(" (", "\n(", 1).splitlines() if len(line) > width else [line]
        lines += [textwrap.fill(part, width) for part in parts]
    return "\n".join(lines)


def stamp_source(fig: plt.Figure, source: str, fontsize: float = 7) -> None:
    """Write `source` (e.g. 'SYNTHETIC data (embedded default)') under everything already drawn,
    right-aligned, so that it never overlaps an axis label or a legend."""
    content = fig.get_tightbbox()  # inches; includes tick labels, axis labels, titles, legends
    height = fig.get_size_inches()[1]
    fig.text(0.995, content.y0 / height - 0.01, source, ha="right", va="top", fontsize=fontsize,
             color="0.35")


def save_figure(fig: plt.Figure, name: str, figures_dir: "str | Path", source: str = "", *, run: str) -> Path:
    """Save `fig` as ``figures_dir/<run>/<name>.png``, stamping the data source (e.g. 'SYNTHETIC data')."""
    if source:
        stamp_source(fig, source)
    path = figure_path(run, name, figures_dir)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight" grows the canvas to hold the stamp
    return path


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str],
               column_labels: Sequence[str], cell: float = 2.0) -> plt.Figure:
    """A grid of grayscale uint8 images (rows x columns) with labelled rows and columns.

    Labels are wrapped to the width (columns) or height (rows) of one cell, so that long regime
    names such as 'fixed_r (deterministic, NOT secure)' never run into their neighbours."""
    n_rows, n_cols = len(rows), len(column_labels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols, cell * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            ax = axes[r][c]
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(wrap_label(column_labels[c], cell), fontsize=9)
            if c == 0:
                ax.set_ylabel(wrap_label(row_labels[r], cell), fontsize=9)
    fig.tight_layout()
    return fig


def histogram_panel(images: dict[str, np.ndarray], bins: int = 256, title: str = "") -> plt.Figure:
    """One pixel-value histogram per labelled image (or image stack), with an optional overall title."""
    width = 3.2
    fig, axes = plt.subplots(1, len(images), figsize=(width * len(images), 3.0), squeeze=False)
    for ax, (label, image) in zip(axes[0], images.items()):
        ax.hist(np.ravel(image), bins=bins, range=(0, 256), color="0.25")
        ax.set_title(wrap_label(label, width * 0.75), fontsize=11)
        ax.set_xlabel("pixel value")
    axes[0][0].set_ylabel("count")
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig
