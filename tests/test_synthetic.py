"""Synthetic stand-ins: deterministic, correctly shaped, labelled synthetic, and learnable."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ppdl_utils.errors import DataError
from ppdl_utils.data.synthetic import (
    CHEST_CLASSES,
    KNEE_CLASSES,
    make_chest_xray_like,
    make_knee_xray_like,
    make_osteoporosis_tabular,
)
from ppdl_utils.data.tabular import OSTEOPOROSIS_CATEGORIES, OSTEOPOROSIS_COLUMNS, encode_features


def _nearest_centroid_accuracy(ds, cells: int = 8, standardize: bool = False) -> float:
    """Held-out accuracy of a nearest-centroid classifier on cells x cells block means
    (optionally standardized per image, which removes the random contrast/brightness)."""
    n, s = len(ds), ds.images.shape[1]
    f = s // cells
    X = ds.images.reshape(n, cells, f, cells, f).astype(np.float64).mean(axis=(2, 4)).reshape(n, -1)
    if standardize:
        X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    idx = np.random.default_rng(123).permutation(n)
    train, test = idx[: n // 2], idx[n // 2:]
    centroids = np.stack([X[train][ds.labels[train] == c].mean(axis=0) for c in range(len(ds.class_names))])
    pred = np.argmin(((X[test][:, None, :] - centroids[None]) ** 2).sum(axis=-1), axis=1)
    return float((pred == ds.labels[test]).mean())


@pytest.mark.parametrize("make, classes", [(make_chest_xray_like, CHEST_CLASSES), (make_knee_xray_like, KNEE_CLASSES)])
def test_shapes_labels_and_synthetic_tag(make, classes):
    ds = make(n_per_class=5, size=32, seed=0)
    assert ds.images.shape == (5 * len(classes), 32, 32) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64
    assert np.bincount(ds.labels).tolist() == [5] * len(classes)
    assert ds.class_names == list(classes)
    assert ds.source == "synthetic" and ds.name.startswith("SYNTHETIC") and ds.paths is None
    assert len(set(ds.hashes)) == len(ds)  # no accidental duplicates
    assert ds.images.std() > 20  # not a blank image


@pytest.mark.parametrize("make", [make_chest_xray_like, make_knee_xray_like])
def test_deterministic_by_seed(make):
    a = make(n_per_class=4, size=32, seed=7)
    b = make(n_per_class=4, size=32, seed=7)
    c = make(n_per_class=4, size=32, seed=8)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_class_subset_matches_full_set_and_names_are_lenient():
    full = make_chest_xray_like(n_per_class=3, size=32, seed=1)
    two = make_chest_xray_like(n_per_class=3, size=32, seed=1, classes=("Normal", "Viral Pneumonia"))
    assert two.class_names == ["Normal", "Viral_Pneumonia"]
    assert np.array_equal(two.images[two.labels == 0], full.images[full.labels == CHEST_CLASSES.index("Normal")])
    assert np.array_equal(two.images[two.labels == 1], full.images[full.labels == 3])
    uneven = make_knee_xray_like(n_per_class=[2, 3, 1], size=32)
    assert np.bincount(uneven.labels).tolist() == [2, 3, 1]


def test_bad_arguments_raise_data_error():
    with pytest.raises(DataError, match="Pneumothorax"):
        make_chest_xray_like(n_per_class=2, classes=("COVID", "Pneumothorax"))
    with pytest.raises(DataError, match="n_per_class"):
        make_knee_xray_like(n_per_class=0)
    with pytest.raises(DataError, match="size"):
        make_chest_xray_like(n_per_class=2, size=4)


def test_chest_classes_are_distinguishable():
    ds = make_chest_xray_like(n_per_class=60, size=64, seed=0)
    assert _nearest_centroid_accuracy(ds, cells=16, standardize=True) > 0.40  # chance: 0.25 (~0.5 seen)
    # each disease adds brightness inside the lungs compared with Normal
    lung_box = ds.images[:, 20:44, 12:52].astype(float).mean(axis=(1, 2))
    normal = lung_box[ds.labels == 2].mean()
    assert all(lung_box[ds.labels == c].mean() > normal for c in (0, 1, 3))


def test_knee_bone_density_decreases_per_class():
    ds = make_knee_xray_like(n_per_class=60, size=64, seed=0)
    assert _nearest_centroid_accuracy(ds) > 0.55  # chance: 0.33 (~0.7 seen)
    centre = ds.images[:, 8:56, 22:42].astype(float).mean(axis=(1, 2))
    means = [centre[ds.labels == c].mean() for c in range(3)]
    assert means[0] > means[1] > means[2]


def test_chest_generation_is_fast():
    start = time.perf_counter()
    ds = make_chest_xray_like(n_per_class=250, size=64, seed=0)
    assert len(ds) == 1000
    assert time.perf_counter() - start < 5.0  # ~0.2 s on one core


def test_osteoporosis_table_mirrors_real_columns_and_vocabularies():
    df = make_osteoporosis_tabular(n_rows=400, seed=0)
    assert list(df.columns) == list(OSTEOPOROSIS_COLUMNS)
    assert len(df) == 400 and df["Id"].is_unique
    assert df["Osteoporosis"].value_counts().to_dict() == {0: 200, 1: 200}
    for col, vocab in OSTEOPOROSIS_CATEGORIES.items():
        assert set(df[col]) == set(vocab), col
    for col in ("Alcohol Consumption", "Medical Conditions", "Medications"):
        assert (df[col] == "None").any() and not df[col].isna().any()
    assert df["Age"].between(18, 90).all()
    assert df.attrs["source"] == "synthetic" and df.attrs["name"].startswith("SYNTHETIC")


def test_osteoporosis_table_is_deterministic_and_learnable():
    a = make_osteoporosis_tabular(n_rows=600, seed=3)
    assert a.equals(make_osteoporosis_tabular(n_rows=600, seed=3))
    assert not a.equals(make_osteoporosis_tabular(n_rows=600, seed=4))
    ages = a.groupby("Osteoporosis")["Age"].mean()
    assert ages[1] > ages[0] + 15
    from sklearn.linear_model import LogisticRegression

    X, y, _ = encode_features(a)
    X[:, 0] /= 100.0
    model = LogisticRegression(max_iter=500).fit(X[:400], y[:400])
    assert model.score(X[400:], y[400:]) > 0.75
