"""Leakage-free stratified train/validation/test splits, and the paper's Table I layout."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

from ppdl_utils.data.dataset import ImageDataset
from ppdl_utils.data.duplicates import groups_by_key
from ppdl_utils.errors import DataError

__all__ = ["SPLIT_NAMES", "stratified_split", "stratified_subset", "split_dataset", "split_table"]

SPLIT_NAMES = ("train", "val", "test")
_TABLE_COLUMNS = {"train": "Training", "val": "Validation", "test": "Testing"}


def _largest_remainder(n: int, fractions: np.ndarray) -> np.ndarray:
    """`n` items shared by `fractions`, rounded by largest remainder (the counts sum to `n`)."""
    raw = n * fractions
    base = np.floor(raw).astype(np.int64)
    rest = n - int(base.sum())
    if rest > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:rest]] += 1
    return base


def _check_split_args(labels, groups, fractions) -> tuple[np.ndarray, list, np.ndarray]:
    """(1-D labels, one group key per label, normalised fractions), or a DataError naming the argument."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"'labels' must be one-dimensional, got shape {labels.shape}")
    n = len(labels)
    group_keys: list = list(range(n)) if groups is None else list(groups)
    if len(group_keys) != n:
        raise DataError(f"'groups' has {len(group_keys)} entries but 'labels' has {n}")
    fr = np.asarray(list(fractions), dtype=np.float64)
    if fr.ndim != 1 or len(fr) not in (2, 3) or np.any(~np.isfinite(fr)) or np.any(fr < 0) or abs(fr.sum() - 1) > 1e-6:
        raise DataError(f"'fractions' must be 2 or 3 non-negative numbers summing to 1, got {tuple(fractions)}")
    return labels, group_keys, fr / fr.sum()


def _strata(labels: np.ndarray, group_keys: list) -> list[list[list[int]]]:
    """The groups (index lists) of each stratum, strata in label order; a group's stratum is its
    most common label (ties: the smallest label)."""
    by_class: dict = defaultdict(list)
    for idx in groups_by_key(group_keys).values():
        counts = Counter(labels[idx].tolist())
        best = max(counts.values())
        by_class[min(lab for lab, c in counts.items() if c == best)].append(idx)
    return [by_class[stratum] for stratum in sorted(by_class)]


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Split indices into train/val/test, stratified by label and leakage-free by group.

    All members of a group (e.g. the same content hash: exact copies of one image) land in the
    same part, so no image is in two parts.  Within each class the parts get
    ``fractions * n_class`` samples rounded by largest remainder; with singleton groups this
    is exact (each part within 1 of ``fraction * n_class``), larger groups are placed first
    (largest first, random among equal sizes) where the remaining shortfall is largest, so the
    proportions stay close.  A group whose members have different labels (a label conflict:
    resolve those first) is stratified under its most common label.

    Args:
        labels: ``(N,)`` class labels.
        groups: ``(N,)`` group keys (e.g. ``dataset.hashes``); ``None``: every index alone.
        fractions: 3 fractions (train, val, test) or 2 (train, test), non-negative, sum 1.
        seed: the same seed and inputs give the same split.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}`` (or train/test), sorted int64 arrays.
    """
    labels, group_keys, fr = _check_split_args(labels, groups, fractions)
    names = SPLIT_NAMES if len(fr) == 3 else ("train", "test")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in names]
    for glist in _strata(labels, group_keys):
        target = _largest_remainder(sum(len(g) for g in glist), fr)
        filled = np.zeros(len(fr), dtype=np.int64)
        perm = rng.permutation(len(glist))
        sizes = np.array([len(glist[i]) for i in perm])
        for gi in perm[np.argsort(-sizes, kind="stable")]:  # largest groups first
            k = int(np.argmax(target - filled))  # first part with the largest shortfall
            parts[k].extend(glist[gi])
            filled[k] += len(glist[gi])
    return {name: np.sort(np.asarray(p, dtype=np.int64)) for name, p in zip(names, parts)}


def stratified_subset(indices: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray, n: int,
                      seed: int = 0) -> np.ndarray:
    """A seeded random subset of ``indices`` with ``n`` members (all of them if ``n`` is larger), in
    the classes' proportions (largest remainder), sorted.

    Why: split indices come sorted, so the first ``n`` of a class-folder dataset are one class.

    Args:
        indices: candidate indices (e.g. ``split["test"]``).
        labels: the labels of the whole dataset (indexed by ``indices``).
        n: how many to keep (>= 0).
        seed: the same seed and inputs give the same subset.
    """
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise DataError(f"'n' must be a non-negative int, got {n!r}")
    if indices.size and (indices.min() < 0 or indices.max() >= len(labels)):
        raise DataError(f"'indices' hold values outside [0, {len(labels) - 1}] (the labels' length)")
    if n >= len(indices):
        return np.sort(indices)
    classes, counts = np.unique(labels[indices], return_counts=True)
    quota = _largest_remainder(int(n), counts / counts.sum())
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(indices[labels[indices] == c], size=int(k), replace=False)
              for c, k in zip(classes, quota)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def split_dataset(
    dataset: ImageDataset, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, ImageDataset]]:
    """:func:`stratified_split` grouped by content hash; returns ``(indices, datasets)``."""
    split = stratified_split(dataset.labels, dataset.hashes, fractions=fractions, seed=seed)
    parts = {k: dataset.subset(v, name=f"{dataset.name}:{k}") for k, v in split.items()}
    return split, parts


def split_table(dataset: ImageDataset, split: dict[str, np.ndarray]) -> pd.DataFrame:
    """Images per class and part, laid out like the paper's Table I.

    Rows: the class names, then ``Total``; columns ``Training``, ``Validation``, ``Testing``
    (those present in ``split``).
    """
    unknown = set(split) - set(_TABLE_COLUMNS)
    if unknown:
        raise DataError(f"'split' has unknown parts {sorted(unknown)}; expected {list(_TABLE_COLUMNS)}")
    data = {}
    for part, column in _TABLE_COLUMNS.items():
        if part not in split:
            continue
        idx = np.asarray(split[part], dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(dataset)):
            raise DataError(f"'split[{part!r}]' holds indices outside [0, {len(dataset) - 1}]")
        data[column] = np.bincount(dataset.labels[idx], minlength=len(dataset.class_names)).astype(np.int64)
    table = pd.DataFrame(data, index=pd.Index(list(dataset.class_names), name="Class"))
    table.loc["Total"] = table.sum(axis=0)
    return table.astype(np.int64)
