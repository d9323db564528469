"""Loaders, duplicate/conflict handling and leakage-free splits, on tiny datasets made here."""
from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ppdl_utils.data.checks import check_int, normalise_class_name
from ppdl_utils.data.dataset import ImageDataset, to_rgb
from ppdl_utils.data.duplicates import find_duplicates, resolve_label_conflicts
from ppdl_utils.data.loaders import load_image_folder, load_medmnist_npz
from ppdl_utils.data.sources import SYNTHETIC_PER_CLASS, load_chest_images
from ppdl_utils.data.splits import split_dataset, split_table, stratified_split, stratified_subset
from ppdl_utils.data.synthetic import CHEST_CLASSES
from ppdl_utils.errors import DataError


def _img(seed: int, size: int = 20, mode: str = "L") -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "RGB":
        return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8))


def _save(path: Path, seed: int, fmt: str | None = None, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _img(seed, mode=mode).save(path, format=fmt)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------
# load_image_folder
# --------------------------------------------------------------------------------------
def test_png_and_jpeg_class_folders(tmp_path):
    _save(tmp_path / "b_class" / "x1.png", 1)
    _save(tmp_path / "b_class" / "x10.png", 2)
    _save(tmp_path / "b_class" / "x2.JPG", 3, fmt="JPEG", mode="RGB")
    _save(tmp_path / "a_class" / "y.jpeg", 4, fmt="JPEG")
    _save(tmp_path / "a_class" / "z.bmp", 5, fmt="BMP")
    (tmp_path / "a_class" / "notes.txt").write_text("not an image")
    ds = load_image_folder(tmp_path, size=16)
    assert ds.class_names == ["a_class", "b_class"]
    assert ds.images.shape == (5, 16, 16) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    # natural sorted order inside a class: x1, x2, x10
    assert [Path(p).name for p in ds.paths] == ["y.jpeg", "z.bmp", "x1.png", "x2.JPG", "x10.png"]
    assert ds.hashes == [_sha(Path(p)) for p in ds.paths]
    assert ds.report["ignored_files"] == 1 and ds.report["skipped_corrupt"] == 0
    assert ds.source == "folder" and len(ds) == 5
    assert to_rgb(ds.images).shape == (5, 16, 16, 3)
    assert np.array_equal(ds.to_rgb()[..., 2], ds.images)


def test_grayscale_conversion_and_native_size(tmp_path):
    path = tmp_path / "c" / "rgb.png"
    path.parent.mkdir()
    Image.new("RGB", (12, 12), (200, 100, 50)).save(path)
    ds = load_image_folder(tmp_path, size=None, min_classes=1)
    assert ds.images.shape == (1, 12, 12)
    expected = np.asarray(Image.new("RGB", (1, 1), (200, 100, 50)).convert("L"))[0, 0]
    assert np.all(ds.images == expected)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    arr = np.linspace(0, 4095, 64, dtype=np.uint16).reshape(8, 8)
    path = tmp_path / "c" / "deep.png"
    path.parent.mkdir()
    Image.fromarray(arr).save(path)
    ds = load_image_folder(tmp_path, size=None, min_classes=1)
    assert ds.images.min() == 0 and ds.images.max() == 255


def test_images_and_masks_layout(tmp_path):
    for i in range(3):
        _save(tmp_path / "COVID" / "images" / f"COVID-{i}.png", i)
        _save(tmp_path / "COVID" / "masks" / f"COVID-{i}.png", 100 + i)
    for i in range(2):
        _save(tmp_path / "Viral Pneumonia" / "images" / f"Viral Pneumonia-{i}.png", 10 + i)
        _save(tmp_path / "Viral Pneumonia" / "masks" / f"Viral Pneumonia-{i}.png", 200 + i)
    (tmp_path / "COVID.metadata.xlsx").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "README.md.txt").write_text("readme")
    ds = load_image_folder(tmp_path, size=8)
    assert ds.class_names == ["COVID", "Viral Pneumonia"]
    assert ds.class_counts() == {"COVID": 3, "Viral Pneumonia": 2}
    assert not any("masks" in Path(p).parts for p in ds.paths)
    assert len(ds.report["ignored_dirs"]) == 2

    picked = load_image_folder(tmp_path, size=8, classes=["Viral_Pneumonia", "COVID"])
    assert picked.class_names == ["Viral_Pneumonia", "COVID"]
    assert picked.class_counts() == {"Viral_Pneumonia": 2, "COVID": 3}
    assert all("Viral Pneumonia" in p for p in np.asarray(picked.paths)[picked.labels == 0])


def test_corrupt_file_raises_naming_it_or_is_skipped(tmp_path):
    for i in range(2):
        _save(tmp_path / "A" / f"ok{i}.png", i)
    _save(tmp_path / "B" / "ok.png", 7)
    bad = tmp_path / "B" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    truncated = tmp_path / "A" / "truncated.jpg"
    _save(truncated, 9, fmt="JPEG")
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(DataError, match="truncated.jpg|broken.png"):
        load_image_folder(tmp_path, size=8)
    ds = load_image_folder(tmp_path, size=8, skip_corrupt=True)
    assert len(ds) == 3
    assert ds.report["skipped_corrupt"] == 2
    assert sorted(Path(p).name for p in ds.report["skipped_corrupt_paths"]) == ["broken.png", "truncated.jpg"]


def test_class_with_only_corrupt_files_is_an_error_even_when_skipping(tmp_path):
    _save(tmp_path / "A" / "ok.png", 1)
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"B"):
        load_image_folder(tmp_path, size=8, skip_corrupt=True)


def test_empty_class_error_names_the_folder(tmp_path):
    _save(tmp_path / "Full" / "a.png", 1)
    (tmp_path / "Hollow").mkdir()
    (tmp_path / "Hollow" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="Hollow"):
        load_image_folder(tmp_path, size=8)
    # the empty folder is fine when it is not requested
    assert load_image_folder(tmp_path, size=8, classes=["Full"], min_classes=1).class_counts() == {"Full": 1}


def test_root_errors(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere"):
        load_image_folder(missing)
    a_file = tmp_path / "file.png"
    _save(a_file, 1)
    with pytest.raises(DataError, match="not a directory"):
        load_image_folder(a_file)
    empty = tmp_path / "empty_root"
    empty.mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(empty)
    _save(empty / "Normal" / "a.png", 1)
    with pytest.raises(DataError, match="COVID"):
        load_image_folder(empty, classes=["COVID"])
    with pytest.raises(DataError, match="max_per_class"):
        load_image_folder(empty, max_per_class=0)


def test_different_native_sizes_need_a_size(tmp_path):
    _save(tmp_path / "A" / "a.png", 1)  # 20 x 20
    p = tmp_path / "B" / "b.png"
    p.parent.mkdir()
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(p)  # 7 wide, 5 high
    with pytest.raises(DataError, match=r"(?s)a\.png is 20x20 px.*b\.png is 7x5 px.*size=") as err:
        load_image_folder(tmp_path, size=None)
    assert str(tmp_path / "A" / "a.png") in str(err.value) and str(p) in str(err.value)
    assert load_image_folder(tmp_path, size=6).images.shape == (2, 6, 6)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=2, max_size=5, unique=True),
       st.integers(0, 4))
def test_mixed_sizes_error_names_two_files_with_their_sizes(sizes, first_odd):
    """Whatever the sizes and wherever the first odd one sits, the error names the first file and
    the first file of another size, each with its size."""
    first_odd = min(first_odd + 1, len(sizes) - 1)
    shapes = [sizes[0]] * first_odd + sizes[1:]  # (width, height) per file, in reading order
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (w, h) in enumerate(shapes):
            cls = "A" if i < len(shapes) // 2 else "B"  # two classes, read A then B
            (root / cls).mkdir(exist_ok=True)
            Image.fromarray(np.full((h, w), i, np.uint8)).save(root / cls / f"img{i:02d}.png")
        with pytest.raises(DataError) as err:
            load_image_folder(root, size=None)
        (w0, h0), (w1, h1) = shapes[0], shapes[first_odd]
        message = str(err.value)
        assert f"img00.png is {w0}x{h0} px" in message
        assert f"img{first_odd:02d}.png is {w1}x{h1} px" in message


def test_single_class_is_an_error_naming_the_folder(tmp_path):
    for i in range(3):
        _save(tmp_path / "COVID" / "images" / f"c{i}.png", i)
        _save(tmp_path / "COVID" / "masks" / f"c{i}.png", 10 + i)
    with pytest.raises(DataError, match=r"(?s)COVID.*holds 1 class folder.*'images'.*one class's folder"):
        load_image_folder(tmp_path / "COVID", size=8)  # a class folder given as the root
    with pytest.raises(DataError, match=rf"{tmp_path}.*holds 1 class folder.*\['COVID'\].*at least 2"):
        load_image_folder(tmp_path, size=8)
    _save(tmp_path / "Normal" / "n.png", 5)
    with pytest.raises(DataError, match=r"'classes' selects 1 class.*\['Normal'\]"):
        load_image_folder(tmp_path, size=8, classes=["Normal"])
    assert len(load_image_folder(tmp_path, size=8)) == 4
    assert load_image_folder(tmp_path, size=8, classes="Normal", min_classes=1).class_names == ["Normal"]


def test_missing_class_names_the_class_and_the_folder(tmp_path):
    for cls in ("COVID", "Normal"):
        _save(tmp_path / cls / "a.png", 1)
    with pytest.raises(DataError, match=rf"'Viral Pneumonia'.*{tmp_path}.*\['COVID', 'Normal'\]"):
        load_image_folder(tmp_path, size=8, classes=["COVID", "Normal", "Viral Pneumonia"])


@given(st.one_of(st.booleans(), st.floats(allow_nan=True), st.integers(-5, 0), st.text(max_size=3)))
def test_check_int_refuses_non_positive_ints_naming_the_parameter(value):
    with pytest.raises(DataError, match="'max_per_class'"):
        check_int(value, "max_per_class")


@given(st.integers(1, 10**6), st.integers(1, 64))
def test_check_int_accepts_ints_at_or_above_the_minimum(value, minimum):
    if value >= minimum:
        assert check_int(np.int64(value), "size", minimum=minimum) == value
    else:
        with pytest.raises(DataError, match=f"'size' must be an int >= {minimum}"):
            check_int(value, "size", minimum=minimum)
    assert check_int(None, "size", allow_none=True) is None


@given(st.text(alphabet="abcXYZ _-", min_size=1, max_size=12))
def test_class_names_match_ignoring_case_spaces_underscores_and_dashes(name):
    variant = name.upper().replace(" ", "_").replace("-", " ")
    assert normalise_class_name(variant) == normalise_class_name(name)


def test_max_per_class_is_a_seeded_subset(tmp_path):
    for i in range(10):
        _save(tmp_path / "A" / f"{i:02d}.png", i)
    for i in range(3):
        _save(tmp_path / "B" / f"{i:02d}.png", 50 + i)
    first = load_image_folder(tmp_path, size=8, max_per_class=4, seed=3)
    again = load_image_folder(tmp_path, size=8, max_per_class=4, seed=3)
    assert first.class_counts() == {"A": 4, "B": 3}
    assert first.paths == again.paths
    picks = {tuple(load_image_folder(tmp_path, size=8, max_per_class=4, seed=s).paths) for s in range(6)}
    assert len(picks) > 1


def test_file_hash_finds_copies_across_folders(tmp_path):
    src = _save(tmp_path / "A" / "one.png", 1)
    _save(tmp_path / "A" / "two.png", 2)
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "copy_of_one.png").write_bytes(src.read_bytes())
    (tmp_path / "A" / "same_again.png").write_bytes(src.read_bytes())
    ds = load_image_folder(tmp_path, size=8)
    groups = find_duplicates(ds)
    assert len(groups) == 1
    assert sorted(Path(ds.paths[i]).name for i in groups[0]) == ["copy_of_one.png", "one.png", "same_again.png"]
    assert ds.report["conflicting_images"] == 1 and ds.report["distinct_images"] == 2


# --------------------------------------------------------------------------------------
# duplicates and conflicts
# --------------------------------------------------------------------------------------
def _toy_with_conflicts() -> ImageDataset:
    rng = np.random.default_rng(0)
    A, B, C, D = (rng.integers(0, 256, (4, 4), dtype=np.uint8) for _ in range(4))
    #            A  A  B  B  C  C  C  D
    images = [A, A, B, B, C, C, C, D]
    labels = [0, 0, 0, 1, 1, 1, 0, 2]
    return ImageDataset(np.stack(images), np.array(labels), ["x", "y", "z"], name="toy")


def test_find_duplicates_groups():
    ds = _toy_with_conflicts()
    assert find_duplicates(ds) == [[0, 1], [2, 3], [4, 5, 6]]
    assert ds.hashes[0] == hashlib.sha256(ds.images[0].tobytes()).hexdigest()


def test_drop_conflicting_rule():
    ds = _toy_with_conflicts()
    out = resolve_label_conflicts(ds)
    # A kept once (same label), B and C dropped (two labels each), D kept
    assert len(out) == 2 and out.labels.tolist() == [0, 2]
    assert np.array_equal(out.images[0], ds.images[0]) and np.array_equal(out.images[1], ds.images[7])
    r = out.report
    assert (r["n_before"], r["n_after"], r["distinct_images"]) == (8, 2, 4)
    assert r["conflicting_images"] == 2 and r["conflicting_files"] == 5
    assert r["conflicts_dropped"] == 2 and r["conflicts_relabelled"] == 0
    assert r["duplicate_copies_removed"] == 4
    assert len(ds) == 8  # input untouched


def test_majority_rule_keeps_majority_and_drops_ties():
    ds = _toy_with_conflicts()
    out = resolve_label_conflicts(ds, rule="majority")
    # A once (label 0), B tie 1:1 dropped, C two votes for 1 vs one for 0 -> kept as 1, D
    assert out.labels.tolist() == [0, 1, 2]
    assert np.array_equal(out.images[1], ds.images[4])
    assert out.report["conflicts_relabelled"] == 1 and out.report["conflicts_dropped"] == 1
    assert find_duplicates(out) == []
    with pytest.raises(DataError, match="rule"):
        resolve_label_conflicts(ds, rule="vote")


# --------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------
@given(st.lists(st.integers(0, 3), min_size=1, max_size=300), st.integers(0, 2**32 - 1))
def test_split_proportions_per_class(labels, seed):
    labels = np.array(labels)
    split = stratified_split(labels, None, (0.8, 0.1, 0.1), seed=seed)
    all_idx = np.concatenate(list(split.values()))
    assert sorted(all_idx.tolist()) == list(range(len(labels)))  # a partition
    for c in np.unique(labels):
        n_c = int((labels == c).sum())
        for part, frac in zip(("train", "val", "test"), (0.8, 0.1, 0.1)):
            got = int((labels[split[part]] == c).sum())
            assert abs(got - frac * n_c) <= 1, (part, c, got, n_c)


@given(st.lists(st.integers(0, 3), min_size=1, max_size=200), st.integers(0, 250), st.integers(0, 2**32 - 1))
def test_stratified_subset_keeps_the_class_proportions(labels, n, seed):
    labels = np.array(labels)
    candidates = np.flatnonzero(np.arange(len(labels)) % 3 != 1)  # any index set, e.g. a test split
    if candidates.size == 0:
        return
    subset = stratified_subset(candidates, labels, n, seed)
    assert len(subset) == min(n, len(candidates)) and np.all(np.diff(subset) > 0)
    assert set(subset.tolist()) <= set(candidates.tolist())
    assert np.array_equal(subset, stratified_subset(candidates, labels, n, seed))
    for c in np.unique(labels[candidates]):
        share = (labels[candidates] == c).mean()
        assert abs(int((labels[subset] == c).sum()) - share * len(subset)) < 1


def test_stratified_subset_of_sorted_class_folders_is_not_one_class():
    labels = np.repeat([0, 1, 2], 100)  # split indices come sorted: the first 60 are all class 0
    assert np.bincount(labels[stratified_subset(np.arange(300), labels, 60)]).tolist() == [20, 20, 20]
    with pytest.raises(DataError, match="'n'"):
        stratified_subset(np.arange(3), labels, -1)
    with pytest.raises(DataError, match="indices"):
        stratified_subset(np.array([0, 400]), labels, 1)


@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4)), min_size=1, max_size=80),
    st.integers(0, 2**32 - 1),
)
def test_split_is_leakage_free_and_deterministic(group_specs, seed):
    # each spec: (label, number of exact copies) -> one group of that many indices
    labels, groups = [], []
    for g, (label, copies) in enumerate(group_specs):
        labels += [label] * copies
        groups += [f"hash{g}"] * copies
    order = np.random.default_rng(seed % 1000).permutation(len(labels))
    labels, groups = np.array(labels)[order], np.array(groups)[order]
    split = stratified_split(labels, groups, seed=seed)
    seen = {part: set(groups[idx]) for part, idx in split.items()}
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"]) and not (seen["val"] & seen["test"])
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(len(labels)))
    again = stratified_split(labels, groups, seed=seed)
    assert all(np.array_equal(split[k], again[k]) for k in split)


def test_split_with_groups_stays_close_to_fractions():
    rng = np.random.default_rng(0)
    labels, groups = [], []
    for g in range(400):
        copies = 1 + (rng.random() < 0.4) * rng.integers(1, 3)
        labels += [g % 2] * copies
        groups += [g] * copies
    labels = np.array(labels)
    split = stratified_split(labels, groups, seed=1)
    for c in (0, 1):
        n_c = (labels == c).sum()
        for part, frac in zip(("train", "val", "test"), (0.8, 0.1, 0.1)):
            assert abs((labels[split[part]] == c).sum() - frac * n_c) <= 3


def test_split_changes_with_seed_and_validates_arguments():
    labels = np.repeat([0, 1], 50)
    a = stratified_split(labels, seed=0)
    b = stratified_split(labels, seed=1)
    assert not np.array_equal(a["test"], b["test"])
    two = stratified_split(labels, fractions=(0.7, 0.3))
    assert set(two) == {"train", "test"} and len(two["test"]) == 30
    with pytest.raises(DataError, match="fractions"):
        stratified_split(labels, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(DataError, match="groups"):
        stratified_split(labels, groups=[1, 2, 3])


def test_split_table_layout_and_split_dataset():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 4, 4), dtype=np.uint8)
    labels = np.array([0] * 20 + [1] * 10)
    ds = ImageDataset(images, labels, ["COVID", "Normal"], name="toy")
    idx, parts = split_dataset(ds, seed=0)
    table = split_table(ds, idx)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["Training", "Validation", "Testing"]
    assert list(table.index) == ["COVID", "Normal", "Total"]
    assert table.loc["COVID"].tolist() == [16, 2, 2]
    assert table.loc["Normal"].tolist() == [8, 1, 1]
    assert table.loc["Total"].tolist() == [24, 3, 3]
    assert len(parts["train"]) == 24 and parts["test"].class_names == ["COVID", "Normal"]


# --------------------------------------------------------------------------------------
# MedMNIST
# --------------------------------------------------------------------------------------
def _write_npz(path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    content = {}
    for split, n in (("train", 12), ("val", 3), ("test", 5)):
        content[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        content[f"{split}_labels"] = rng.integers(0, 2, (n, 1), dtype=np.uint8)
    content.update(overrides)
    content = {k: v for k, v in content.items() if v is not None}
    np.savez(path, **content)
    return path


def test_medmnist_npz_with_n1_labels(tmp_path):
    path = _write_npz(tmp_path / "pneumoniamnist.npz")
    raw = np.load(path)
    train = load_medmnist_npz(path, split="train", class_names=["normal", "pneumonia"])
    assert train.images.shape == (12, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (12,) and np.array_equal(train.labels, raw["train_labels"][:, 0])
    assert train.class_names == ["normal", "pneumonia"] and train.source == "medmnist"
    splits = load_medmnist_npz(path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "val": 3, "test": 5}
    assert splits["val"].class_names == ["class 0", "class 1"]
    small = load_medmnist_npz(path, split="test", size=14)
    assert small.images.shape == (5, 14, 14)
    every = load_medmnist_npz(path, split="all")
    assert len(every) == 20 and Counter(every.report["official_split"].tolist()) == {"train": 12, "val": 3, "test": 5}


def test_medmnist_flat_labels_and_rgb(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "rgb.npz"
    np.savez(path, train_images=rng.integers(0, 256, (4, 28, 28, 3), dtype=np.uint8),
             train_labels=np.array([0, 1, 2, 1]))
    ds = load_medmnist_npz(path, split="train")
    assert ds.images.shape == (4, 28, 28) and ds.class_names == ["class 0", "class 1", "class 2"]
    assert set(load_medmnist_npz(path)) == {"train"}


def test_chest_images_from_a_medmnist_file_split_the_same_at_every_size(tmp_path):
    path = _write_npz(tmp_path / "pneumoniamnist.npz", train_images=np.concatenate(
        [np.full((2, 28, 28), 7, np.uint8), np.random.default_rng(3).integers(0, 256, (10, 28, 28), dtype=np.uint8)]))
    native, large = load_chest_images(path, 28, None), load_chest_images(path, 64, None)
    assert native.name == "pneumoniamnist" and native.class_names == ["normal", "pneumonia"]
    assert len(native) == 20 and large.images.shape == (20, 64, 64)
    assert native.hashes == large.hashes and native.report["duplicate_groups"] == 1  # two equal images
    assert all(np.array_equal(a, b) for a, b in zip(stratified_split(native.labels, native.hashes).values(),
                                                      stratified_split(large.labels, large.hashes).values()))
    few = load_chest_images(path, 28, 2, seed=1)
    assert few.class_counts() == {"normal": 2, "pneumonia": 2}
    assert np.array_equal(few.images, load_chest_images(path, 28, 2, seed=1).images)
    with pytest.raises(DataError, match="classes"):
        load_chest_images(path, 28, None, classes=["normal"])
    with pytest.raises(DataError, match="missing.npz"):
        load_chest_images(tmp_path / "missing.npz", 28, None)


def test_medmnist_errors(tmp_path):
    with pytest.raises(DataError, match="missing.npz"):
        load_medmnist_npz(tmp_path / "missing.npz")
    no_val = _write_npz(tmp_path / "noval.npz", val_labels=None)
    with pytest.raises(DataError, match="val_labels"):
        load_medmnist_npz(no_val, split="val")
    mismatch = _write_npz(tmp_path / "mismatch.npz", test_labels=np.zeros((4, 1), np.uint8))
    with pytest.raises(DataError, match="test_images.*5.*4"):
        load_medmnist_npz(mismatch, split="test")
    with pytest.raises(DataError, match="class_names"):
        load_medmnist_npz(_write_npz(tmp_path / "ok.npz"), split="train", class_names=["only one"])
    with pytest.raises(DataError, match="split"):
        load_medmnist_npz(tmp_path / "ok.npz", split="training")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz"):
        load_medmnist_npz(bad)


def test_image_dataset_validates_arrays():
    with pytest.raises(DataError, match="uint8"):
        ImageDataset(np.zeros((2, 4, 4), np.float32), np.zeros(2, int), ["a"])
    with pytest.raises(DataError, match="labels"):
        ImageDataset(np.zeros((2, 4, 4), np.uint8), np.zeros(3, int), ["a"])
    with pytest.raises(DataError, match="labels"):
        ImageDataset(np.zeros((2, 4, 4), np.uint8), np.array([0, 1]), ["a"])


def test_link_files_stand_for_class_folders(tmp_path):
    """A dataset copied without symlinks keeps each link as a small file holding the target path
    (the shared 3-class folder links COVID/ and Normal/ that way): it loads as that class folder."""
    from PIL import Image

    other = tmp_path / "other" / "COVID"
    other.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(other / f"c{i}.png")
    root = tmp_path / "three"
    (root / "Normal").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.full((8, 8), 100 + 40 * i, dtype=np.uint8)).save(root / "Normal" / f"n{i}.png")
    (root / "COVID").write_text("../other/COVID\n")
    (root / "notes.txt").write_text("not a link: no such folder\n")
    dataset = load_image_folder(root)
    assert dataset.class_names == ["COVID", "Normal"] and len(dataset.labels) == 4


# --------------------------------------------------------------------------------------
# the notebooks' entry point
# --------------------------------------------------------------------------------------
def test_chest_images_fall_back_to_the_synthetic_default_and_name_a_bad_folder(tmp_path):
    ds = load_chest_images(None, size=16, n_per_class=None, seed=0)
    assert ds.source == "synthetic" and ds.class_counts() == {c: SYNTHETIC_PER_CLASS for c in CHEST_CLASSES}
    two = load_chest_images("", size=16, n_per_class=3, classes=["Normal", "COVID"])
    assert two.class_names == ["Normal", "COVID"] and len(two) == 6
    with pytest.raises(DataError, match="nowhere"):
        load_chest_images(tmp_path / "nowhere", size=16, n_per_class=None)
    _save(tmp_path / "only" / "a.png", 1)
    with pytest.raises(DataError, match="holds 1 class folder"):
        load_chest_images(tmp_path, size=16, n_per_class=None)
