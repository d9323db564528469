"""Plot helpers shared by the notebooks; every figure names its data source."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np


def save_figure(fig: plt.Figure, name: str, figures_dir: "str | Path", source: str = "") -> Path:
    """Save `fig` as figures_dir/name.png, stamping the data source (e.g. 'SYNTHETIC data')."""
    if source:
        fig.text(0.995, 0.005, source, ha="right", va="bottom", fontsize=7, color="0.35")
    path = Path(figures_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str],
               column_labels: Sequence[str], cell: float = 2.0) -> plt.Figure:
    """A grid of grayscale uint8 images (rows x columns) with labelled rows and columns."""
    n_rows, n_cols = len(rows), len(column_labels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols, cell * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            ax = axes[r][c]
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column_labels[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(row_labels[r], fontsize=9)
    fig.tight_layout()
    return fig


def histogram_panel(images: dict[str, np.ndarray], bins: int = 256) -> plt.Figure:
    """One pixel-value histogram per labelled image (or image stack)."""
    fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 2.6), squeeze=False)
    for ax, (label, image) in zip(axes[0], images.items()):
        ax.hist(np.ravel(image), bins=bins, range=(0, 256), color="0.25")
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("pixel value")
    axes[0][0].set_ylabel("count")
    fig.tight_layout()
    return fig
