"""Synthetic stand-ins: deterministic, correctly shaped, labelled synthetic, and learnable."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.data.synthetic import (
    CHEST_CLASSES,
    KNEE_CLASSES,
    make_chest_xray_like,
    make_knee_xray_like,
    make_osteoporosis_tabular,
)
from ppdl_utils.data.tabular import OSTEOPOROSIS_CATEGORIES, OSTEOPOROSIS_COLUMNS, encode_features
from ppdl_utils.errors import DataError


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


def _equal_neighbour_fractions(images: np.ndarray) -> np.ndarray:
    """Per image: the fraction of pixel pairs at 7 small offsets that hold the same gray level.

    Invariant under any one-to-one substitution of the 256 gray levels, i.e. what a deterministic
    encryption regime leaves of an image (the level sets), not the order of the levels."""
    im = images.astype(np.int16)
    h, w = im.shape[1:]
    return np.stack([(im[:, : h - dy, : w - dx] == im[:, dy:, dx:]).mean(axis=(1, 2))
                     for dy, dx in ((0, 1), (1, 0), (0, 2), (2, 0), (1, 1), (0, 3), (3, 0))], axis=1)


def _held_out_nearest_centroid(features: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    idx = np.random.default_rng(123).permutation(len(labels))
    train, test = idx[: len(idx) // 2], idx[len(idx) // 2:]
    z = (features - features[train].mean(axis=0)) / (features[train].std(axis=0) + 1e-9)
    centroids = np.stack([z[train][labels[train] == c].mean(axis=0) for c in range(n_classes)])
    pred = np.argmin(((z[test][:, None, :] - centroids[None]) ** 2).sum(axis=-1), axis=1)
    return float((pred == labels[test]).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_chest_classes_differ_in_what_a_substitution_keeps(seed):
    """The class signal survives a secret substitution of the gray levels (the deterministic
    regimes): statistics that ignore which level is which still tell the classes apart.  (The
    previous generator, whose classes differed by brightness under per-pixel noise, gave chance
    here: 0.28.)"""
    ds = make_chest_xray_like(n_per_class=40, size=64, seed=seed)
    features = _equal_neighbour_fractions(ds.images)
    assert _held_out_nearest_centroid(features, ds.labels, 4) > 0.65  # chance 0.25; ~0.8 seen
    # the fine reticular network breaks flat areas most, clear lungs least
    flat = features[:, 0]
    by_class = {name: flat[ds.labels == i].mean() for i, name in enumerate(ds.class_names)}
    assert by_class["Viral_Pneumonia"] < min(by_class["COVID"], by_class["Lung_Opacity"]) < by_class["Normal"]


@settings(max_examples=20, deadline=None)
@given(st.permutations(list(range(256))))
def test_equal_neighbour_statistic_ignores_a_substitution(table):
    """The statistic above really is what a substitution keeps: any permutation of the levels
    leaves it unchanged (so the test above says something about encrypted images)."""
    images = make_chest_xray_like(n_per_class=2, size=32, seed=5).images
    substituted = np.asarray(table, dtype=np.uint8)[images]
    assert np.array_equal(_equal_neighbour_fractions(images), _equal_neighbour_fractions(substituted))


def test_chest_images_are_quantized_and_noise_free():
    """Few, evenly spaced gray levels and no per-pixel noise: equal tissue keeps equal pixels, the
    property the deterministic regimes preserve (noise would give every pixel its own level)."""
    ds = make_chest_xray_like(n_per_class=10, size=64, seed=2)
    assert np.all(ds.images % 8 == 0)
    assert len(np.unique(ds.images)) <= 33
    # large flat areas: most horizontal neighbours share their level in every image
    assert _equal_neighbour_fractions(ds.images)[:, 0].min() > 0.35


def test_chest_classes_are_learnable_from_plain_pixels():
    ds = make_chest_xray_like(n_per_class=60, size=64, seed=0)
    assert _nearest_centroid_accuracy(ds, cells=16, standardize=True) > 0.40  # chance: 0.25
    # every disease adds density inside the lungs compared with Normal
    lung_box = ds.images[:, 16:44, 8:56].astype(float).mean(axis=(1, 2))
    normal = lung_box[ds.labels == 2].mean()
    assert all(lung_box[ds.labels == c].mean() > normal for c in (0, 1, 3))


def test_knee_bone_density_decreases_per_class():
    ds = make_knee_xray_like(n_per_class=60, size=64, seed=0)
    assert _nearest_centroid_accuracy(ds) > 0.55  # chance: 0.33 (~0.7 seen)
    centre = ds.images[:, 8:56, 22:42].astype(float).mean(axis=(1, 2))
    means = [centre[ds.labels == c].mean() for c in range(3)]
    assert means[0] > means[1] > means[2]


def test_default_set_size_and_report():
    ds = make_chest_xray_like(seed=0)
    assert ds.images.shape == (1000, 64, 64)
    assert ds.report == {"generator": "make_chest_xray_like", "seed": 0,
                         "n_per_class": {c: 250 for c in CHEST_CLASSES}}


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
