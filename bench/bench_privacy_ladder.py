"""Rungs 3-5 of the privacy ladder with TenSEAL CKKS on real chest X-rays.

    nice -n 5 venv/bin/python bench/bench_privacy_ladder.py \\
        --data-dir /work/shared/data/pneumoniamnist/pneumoniamnist.npz --n-test 624 \\
        [--weights /work/shared/data/mobilenet_v2_imagenet/mobilenet_v2_1.0_224_no_top.weights.h5] \\
        [--image-size 28] [--threads 1] [--rungs 3,4,5] [--out results/bench_privacy_ladder.csv]

* rung 4: square CNN (conv ``--kernel``/``--stride`` 8x8/4, ``--filters`` 3, x², Dense(64), x², Dense), ReLU twin
  trained in the clear on 28-px images; ``--n-test`` test images classified encrypted.
* rung 3: MLP head (Dense(16), square, Dense) on features (MobileNetV2 at ``--backbone-size`` px
  with ``--weights``, else 28-px pixels) reduced by a PCA fitted on the training set to ``--pca``
  dimensions; the same test images classified encrypted.
* rung 5: logistic regression trained on encrypted PCA features (first ``--lr-dims`` components)
  for each ``--train-sizes``; seconds per epoch; accuracy vs the plaintext twin and scikit-learn.

``--data-dir``: a MedMNIST ``.npz`` (official train/test splits) or a class-per-folder image set
(a seeded stratified 80/20 split after removing exact duplicates).  Timings use ``--threads``
TenSEAL threads; the machine is shared, so the load average is printed and stored with the rows.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from ppdl_utils.crypto import ckks  # noqa: E402
from ppdl_utils.data.loaders import load_image_folder, load_medmnist_npz  # noqa: E402
from ppdl_utils.learning import encrypted_cnn as ecnn  # noqa: E402
from ppdl_utils.learning import encrypted_mlp as emlp  # noqa: E402
from ppdl_utils.learning import encrypted_training as etrain  # noqa: E402
from ppdl_utils.learning.encrypted_common import FeatureRange, FeatureRangeError  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("/work/shared/data/pneumoniamnist/pneumoniamnist.npz"))
    p.add_argument("--n-test", type=int, default=200, help="test images classified encrypted (rungs 3, 4)")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--out", type=Path, default=Path("results/bench_privacy_ladder.csv"))
    p.add_argument("--weights", type=Path, default=None, help="MobileNetV2 no-top weights (.h5) for rung 3")
    p.add_argument("--backbone-size", type=int, default=96)
    p.add_argument("--pca", type=int, default=32)
    p.add_argument("--lr-dims", type=int, default=16)
    p.add_argument("--train-sizes", default="64,128,256")
    p.add_argument("--lr-epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=8.0)
    p.add_argument("--cnn-epochs", type=int, default=20)
    p.add_argument("--filters", type=int, default=3, help="rung 4 conv filters (rotations: windows x filters)")
    p.add_argument("--kernel", type=int, default=8, help="rung 4 conv kernel side")
    p.add_argument("--stride", type=int, default=4, help="rung 4 conv stride")
    p.add_argument("--mlp-epochs", type=int, default=60)
    p.add_argument("--max-per-class", type=int, default=None)
    p.add_argument("--threads", type=int, default=1, help="client TenSEAL threads (the server: one)")
    p.add_argument("--rungs", default="3,4,5")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) uint8 -> (N, size, size) uint8, PIL bilinear with antialiasing."""
    if images.shape[1] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])


def load_data(path: Path, seed: int, max_per_class: int | None) -> dict:
    """Train/test images (native size, uint8) and labels."""
    if path.suffix == ".npz":
        splits = load_medmnist_npz(path)
        train, test = splits["train"], splits["test"]
        return {"name": path.stem, "train_x": train.images, "train_y": np.asarray(train.labels),
                "test_x": test.images, "test_y": np.asarray(test.labels), "classes": list(train.class_names)}
    ds = load_image_folder(path, size=None, max_per_class=max_per_class, seed=seed)
    _, first = np.unique(np.asarray(ds.hashes), return_index=True)  # exact duplicates stay on one side
    keep = np.sort(first)
    idx_tr, idx_te = train_test_split(keep, test_size=0.2, random_state=seed, stratify=np.asarray(ds.labels)[keep])
    images, labels = ds.images, np.asarray(ds.labels)
    return {"name": path.name, "train_x": images[idx_tr], "train_y": labels[idx_tr], "test_x": images[idx_te],
            "test_y": labels[idx_te], "classes": list(ds.class_names)}


def encrypted_subset(n_test: int, labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices of the test images classified encrypted (a seeded random subset, sorted)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    return np.sort(order[:min(n_test, len(labels))])


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(scores).argmax(1) == labels).mean())


def run_rung4(data: dict, args: argparse.Namespace, subset: np.ndarray) -> dict:
    """Train the square CNN and its ReLU twin at 28 px, classify the subset encrypted."""
    size = args.image_size
    spec = ecnn.CNNSpec(image_size=size, n_classes=len(data["classes"]), kernel=args.kernel, stride=args.stride,
                        n_filters=args.filters)
    tr, te = resize(data["train_x"], size), resize(data["test_x"], size)
    square = ecnn.train_keras_cnn(tr, data["train_y"], spec, "square", args.cnn_epochs, args.seed)
    relu = ecnn.train_keras_cnn(tr, data["train_y"], spec, "relu", args.cnn_epochs, args.seed)
    cnn = ecnn.cnn_from_keras(square, spec, calibration=tr)
    relu_scores = relu.predict(te[..., None].astype(np.float32) / 255, verbose=0)
    twin_all = ecnn.plain_cnn_scores(cnn, te)
    ctx = ckks.make_context(ckks.CNN_8192, n_threads=args.threads)
    row, _ = ecnn.encrypted_cnn_cost(ctx, cnn, te[subset], data["test_y"][subset])
    return {**row.as_dict(), "square_accuracy_full_test": accuracy(twin_all, data["test_y"]),
            "relu_accuracy_full_test": accuracy(relu_scores, data["test_y"]),
            "relu_accuracy_subset": accuracy(relu_scores[subset], data["test_y"][subset]),
            "n_test_full": len(te), "output_scale": cnn.output_scale}


def features(data: dict, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """Client-side features (MobileNetV2 or pixels), PCA fitted on the training set."""
    if args.weights:
        try:
            from ppdl_utils.learning.features import mobilenet_features
        except ImportError:  # pragma: no cover
            from ppdl_utils.features import mobilenet_features  # type: ignore[no-redef]
        size = args.backbone_size
        f_tr = mobilenet_features(resize(data["train_x"], size), args.weights)
        f_te = mobilenet_features(resize(data["test_x"], size), args.weights)
        name = f"MobileNetV2 {size}px"
    else:
        f_tr = resize(data["train_x"], 28).reshape(len(data["train_x"]), -1) / 255.0
        f_te = resize(data["test_x"], 28).reshape(len(data["test_x"]), -1) / 255.0
        name = "28px pixels"
    pca = PCA(args.pca, random_state=args.seed).fit(f_tr)
    return pca.transform(f_tr), pca.transform(f_te), f"{name} -> PCA {args.pca}"


def run_rung3(data: dict, args: argparse.Namespace, subset: np.ndarray, f_tr: np.ndarray, f_te: np.ndarray,
              feature_name: str) -> dict:
    """Square MLP head + ReLU twin on the features; the in-range part of the subset encrypted."""
    fr = FeatureRange.fit(f_tr, margin=0.25)
    inside = np.array([_in_range(fr, row) for row in f_te])
    x_tr, y_tr, y_te = fr.transform(f_tr), data["train_y"], data["test_y"]
    k = len(data["classes"])
    square = emlp.train_keras_mlp(x_tr, y_tr, 16, "square", args.mlp_epochs, args.seed, k)
    relu = emlp.train_keras_mlp(x_tr, y_tr, 16, "relu", args.mlp_epochs, args.seed, k)
    mlp = emlp.mlp_from_keras(square, fr)
    x_te = np.clip(f_te, fr.low, fr.high)  # clear-text accuracies only; the encrypted path refuses these rows
    twin_all = emlp.plain_mlp_scores(mlp, fr.transform(x_te))
    relu_scores = relu.predict(fr.transform(x_te).astype(np.float32), verbose=0)
    enc_idx = subset[inside[subset]]
    ctx = ckks.make_context(ckks.MLP_8192, n_threads=args.threads)
    row, _ = emlp.encrypted_mlp_cost(ctx, mlp, f_te[enc_idx], y_te[enc_idx], ckks.MLP_8192,
                                     name=f"rung 3: MLP head on encrypted {feature_name}")
    return {**row.as_dict(), "square_accuracy_full_test": accuracy(twin_all, y_te),
            "relu_accuracy_full_test": accuracy(relu_scores, y_te),
            "relu_accuracy_subset": accuracy(relu_scores[enc_idx], y_te[enc_idx]),
            "n_refused_out_of_range": int((~inside[subset]).sum()), "n_test_full": len(y_te)}


def _in_range(fr: FeatureRange, row: np.ndarray) -> bool:
    try:
        fr.transform(row[None])
        return True
    except FeatureRangeError:
        return False


def run_rung5(data: dict, args: argparse.Namespace, f_tr: np.ndarray, f_te: np.ndarray) -> list[dict]:
    """Encrypted LR training per training-set size; the clear-text twins and scikit-learn beside it."""
    d = args.lr_dims
    fr = FeatureRange.fit(f_tr[:, :d], margin=0.1)
    x_tr = 2 * fr.transform(f_tr[:, :d]) - 1  # centred in [-1, 1]: the polynomial sigmoid's good range
    x_te = 2 * fr.transform(np.clip(f_te[:, :d], fr.low, fr.high)) - 1
    y_tr, y_te = data["train_y"], data["test_y"]
    sk_full = LogisticRegression(max_iter=2000).fit(x_tr, y_tr).score(x_te, y_te)
    ctx = ckks.make_context(ckks.TRAINING_8192, n_threads=args.threads)
    rows = []
    for n in (int(s) for s in args.train_sizes.split(",")):
        idx, _ = train_test_split(np.arange(len(y_tr)), train_size=n, random_state=args.seed, stratify=y_tr)
        row, extra = etrain.encrypted_training_cost(ctx, x_tr[idx], y_tr[idx], x_te, y_te, args.lr_epochs,
                                                    args.lr, seed=args.seed, progress=True)
        sk = LogisticRegression(max_iter=2000).fit(x_tr[idx], y_tr[idx]).score(x_te, y_te)
        rows.append({**row.as_dict(), "train_size": n, "epochs": args.lr_epochs, "lr": args.lr,
                     "seconds_per_epoch": row.server_ms / 1000, "cpu_seconds_per_epoch": row.server_cpu_ms / 1000,
                     "exact_sigmoid_gd_accuracy": extra["exact_accuracy"],
                     "sklearn_accuracy_same_n": sk, "sklearn_accuracy_full_train": sk_full,
                     "max_weight_gap_vs_twin": extra["max_weight_gap"], "n_test_full": len(y_te)})
    return rows


def summarise(rows: list[dict]) -> pd.DataFrame:
    """The printed table (the CSV holds every column)."""
    cols = ["rung", "train_size", "n_test", "accuracy", "twin_accuracy", "square_accuracy_full_test",
            "relu_accuracy_full_test", "relu_accuracy_subset", "sklearn_accuracy_same_n", "mismatches_vs_twin",
            "encrypt_ms", "server_ms", "server_cpu_ms", "total_cpu_ms", "decrypt_ms", "bytes_up", "bytes_down",
            "context_bytes", "peak_memory_mb"]
    table = pd.DataFrame(rows)
    return table[[c for c in cols if c in table]]


def main() -> None:
    args = parse_args()
    rungs = {int(r) for r in args.rungs.split(",")}
    start, load0 = time.time(), os.getloadavg()[0]
    data = load_data(args.data_dir, args.seed, args.max_per_class)
    subset = encrypted_subset(args.n_test, data["test_y"], args.seed)
    print(f"{data['name']}: {len(data['train_y'])} train / {len(data['test_y'])} test images, classes "
          f"{data['classes']}, {len(subset)} test images encrypted; load average {load0:.2f}", flush=True)
    rows: list[dict] = []
    if 4 in rungs:
        rows.append(run_rung4(data, args, subset))
    if rungs & {3, 5}:
        f_tr, f_te, feature_name = features(data, args)
        if 3 in rungs:
            rows.append(run_rung3(data, args, subset, f_tr, f_te, feature_name))
        if 5 in rungs:
            rows.extend(run_rung5(data, args, f_tr, f_te))
    for row in rows:
        row.update(dataset=data["name"], threads=args.threads, load_average_start=load0,
                   load_average_end=os.getloadavg()[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summarise(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out} in {time.time() - start:.0f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
