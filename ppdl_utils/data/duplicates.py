"""Exact duplicates and label conflicts: the same image (equal content hash) filed more than once,
possibly under different classes, as happens in merged public X-ray collections."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Hashable, Sequence

import numpy as np

from ppdl_utils.data.dataset import ImageDataset
from ppdl_utils.errors import DataError

__all__ = ["groups_by_key", "duplicate_summary", "find_duplicates", "resolve_label_conflicts"]


def groups_by_key(hashes: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Indices of each distinct key, in order of first appearance."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        groups[h].append(i)
    return groups


def duplicate_summary(labels: Sequence[int] | np.ndarray, hashes: Sequence[Hashable]) -> dict[str, int]:
    """Counts of exact duplicates and label conflicts (keys documented in :func:`resolve_label_conflicts`)."""
    labels = np.asarray(labels)
    groups = groups_by_key(hashes)
    conflicting = [g for g in groups.values() if len(set(labels[g].tolist())) > 1]
    return {
        "distinct_images": len(groups),
        "duplicate_groups": sum(1 for g in groups.values() if len(g) > 1),
        "duplicate_files": sum(len(g) - 1 for g in groups.values()),
        "conflicting_images": len(conflicting),
        "conflicting_files": sum(len(g) for g in conflicting),
    }


def find_duplicates(dataset: ImageDataset) -> list[list[int]]:
    """Groups (2 or more indices, ascending) of images with equal content hash, ordered by first index."""
    groups = [g for g in groups_by_key(dataset.hashes).values() if len(g) > 1]  # type: ignore[arg-type]
    return sorted(groups, key=lambda g: g[0])


def _settle(groups: dict, labels: np.ndarray, rule: str) -> tuple[list[int], dict[int, int], dict[str, int]]:
    """Which index to keep per group, the kept images whose label changes, and the conflict
    counts (``conflicting_images``, ``conflicting_files``, ``conflicts_dropped``, ``conflicts_relabelled``)."""
    keep: list[int] = []
    new_labels: dict[int, int] = {}
    counts = dict.fromkeys(("conflicting_images", "conflicting_files", "conflicts_dropped", "conflicts_relabelled"), 0)
    for idx in groups.values():
        labs = labels[idx].tolist()
        votes = Counter(labs)
        if len(votes) == 1:
            keep.append(idx[0])
            continue
        counts["conflicting_images"] += 1
        counts["conflicting_files"] += len(idx)
        (top, n_top), (_, n_second) = votes.most_common(2)
        if rule == "drop_conflicting" or n_top == n_second:  # unknown true label, or a tie
            counts["conflicts_dropped"] += 1
            continue
        first = next(i for i, lab in zip(idx, labs) if lab == top)
        keep.append(first)
        new_labels[first] = top
        counts["conflicts_relabelled"] += 1
    return sorted(keep), new_labels, counts


def resolve_label_conflicts(dataset: ImageDataset, rule: str = "drop_conflicting") -> ImageDataset:
    """Keep one copy of every distinct image and settle images filed under several labels.

    Exact duplicates (equal content hash) carrying the same label are collapsed to their first
    copy.  An image found under two or more *different* labels is a label conflict:

    * ``rule="drop_conflicting"`` (default): every copy of it is dropped, since its true label
      is unknown and keeping either label would train/test on contradictory targets;
    * ``rule="majority"``: it is kept once with the label most of its copies carry; ties are
      dropped.

    Returns a new dataset (the input is unchanged) in the original order of first copies.
    Its ``report`` gains: ``rule``, ``n_before``, ``n_after``, ``distinct_images``,
    ``duplicate_copies_removed`` (extra copies removed, conflicts included),
    ``conflicting_images`` (distinct images under >= 2 labels), ``conflicting_files``
    (files those images occupy), ``conflicts_dropped`` (distinct images dropped) and
    ``conflicts_relabelled`` (kept with their majority label, rule "majority" only).
    """
    if rule not in ("drop_conflicting", "majority"):
        raise DataError(f"'rule' must be 'drop_conflicting' or 'majority', got {rule!r}")
    groups = groups_by_key(dataset.hashes)  # type: ignore[arg-type]
    keep, new_labels, counts = _settle(groups, dataset.labels, rule)
    out = dataset.subset(keep)
    for pos, i in enumerate(keep):
        if i in new_labels:
            out.labels[pos] = new_labels[i]
    out.report.update(
        {
            "rule": rule,
            "n_before": len(dataset),
            "n_after": len(out),
            "distinct_images": len(groups),
            "duplicate_copies_removed": len(dataset) - len(groups),
            **counts,
        }
    )
    return out
