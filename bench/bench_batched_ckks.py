"""Batched CKKS inference for rungs 3 (MLP head on encrypted features) and 4 (CNN on encrypted 28-px pixels):
every test image of notebook 03's split classified encrypted and compared with the plaintext twin, then the
server's amortized cost against the batch size.

    python bench/bench_batched_ckks.py --data ../shared/data/covid19_radiography_2class
    python bench/bench_batched_ckks.py --quick          # synthetic default, tiny batches (seconds)

Writes ``results/batched_<run>.csv`` (one row per rung and batch size; ``mismatches_vs_twin`` and the
accuracies are over the whole test split, evaluated in batches of the largest size) and
``figures/batched_<run>.png``.  CPU seconds from ``time.process_time`` (SEAL runs one thread).  Batches
larger than the test split repeat its images: the cost of a batch does not depend on its values.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ppdl_utils.config import resolve_weights, run_name  # noqa: E402
from ppdl_utils.crypto.ckks import peak_rss_mb  # noqa: E402
from ppdl_utils.crypto.ckks_columns import (  # noqa: E402
    COLUMNS_CNN_8192,
    COLUMNS_MLP_8192,
    ColumnKeyHolder,
    ColumnServer,
)
from ppdl_utils.data.loaders import _resize_stack  # noqa: E402
from ppdl_utils.data.sources import load_chest_images  # noqa: E402
from ppdl_utils.data.splits import stratified_split  # noqa: E402
from ppdl_utils.learning import encrypted_cnn as rung4  # noqa: E402
from ppdl_utils.learning import encrypted_mlp as rung3  # noqa: E402
from ppdl_utils.learning.batched_rungs import batched_scores  # noqa: E402
from ppdl_utils.learning.encrypted_common import FeatureRange  # noqa: E402
from ppdl_utils.studies.private_pipeline import client_features  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def rung_rows(rung: int, name: str, params, model, test_inputs, y_test, twin_scores, batch_sizes) -> list[dict]:
    key_holder = ColumnKeyHolder(params)
    server = ColumnServer(params, key_holder.public_keys(), key_holder.fingerprint)
    largest = max(batch_sizes)
    scores, _ = batched_scores(key_holder, server, model, test_inputs, min(largest, len(test_inputs)))
    mismatches = int((scores.argmax(1) != twin_scores.argmax(1)).sum())
    top2 = np.sort(twin_scores, axis=1)[:, -2:]
    common = {"rung": rung, "model": name, "n_test": len(y_test), "mismatches_vs_twin": mismatches,
              "accuracy": float((scores.argmax(1) == y_test).mean()),
              "twin_accuracy": float((twin_scores.argmax(1) == y_test).mean()),
              "max_score_error": float(np.abs(scores - twin_scores).max()),
              "min_twin_margin": float((top2[:, 1] - top2[:, 0]).min()), "ckks": params.describe(),
              "evaluation_key_bytes": len(key_holder.public_keys())}
    rows = []
    for size in batch_sizes:
        inputs = np.resize(test_inputs, (size,) + test_inputs.shape[1:])  # repeats the test images
        _, costs = batched_scores(key_holder, server, model, inputs, size)
        cost = costs[0]
        rows.append({**common, "batch_size": size, "amortized_ms_per_image": cost.amortized_ms_per_image,
                     "latency_ms": cost.latency_ms, "server_ms_per_batch": 1000 * cost.server_s,
                     "client_encrypt_ms_per_batch": 1000 * cost.client_encrypt_s,
                     "bytes_up_per_image": cost.bytes_up / size, "bytes_down_per_image": cost.bytes_down / size,
                     "bytes_up_per_batch": cost.bytes_up, "bytes_down_per_batch": cost.bytes_down,
                     "peak_rss_mb": peak_rss_mb()})
        print(f"rung {rung} batch {size}: {cost.amortized_ms_per_image:.3f} ms/image amortized, "
              f"latency {cost.latency_ms / 1000:.1f} s", flush=True)
    return rows


SHORT = {3: "rung 3: MLP head on encrypted features", 4: "rung 4: CNN on encrypted 28-px pixels"}


def plot(table: pd.DataFrame, title: str):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for rung, part in table.groupby("rung"):
        ax.plot(part.batch_size, part.amortized_ms_per_image, "o-", label=SHORT.get(rung, f"rung {rung}"))
    ax.set(xscale="log", yscale="log", xlabel="images per batch (one client, one key)",
           ylabel="server CPU ms per image (one core)", title=title)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--weights", default="default")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--hidden", type=int, default=8, help="rung 3 hidden units (the server's cost grows with it)")
    parser.add_argument("--cnn-epochs", type=int, default=15)
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--figures", default=str(ROOT / "figures"))
    parser.add_argument("--cache", default=str(ROOT / "cache" / "features"))
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the results file")
    args = parser.parse_args()
    run = run_name(args.data, args.quick)
    if args.plot_only:
        table = pd.read_csv(Path(args.results) / f"batched_{run}.csv")
        from ppdl_utils.reporting.figures import save_figure

        save_figure(plot(table, f"{table.dataset.iloc[0]}: batched CKKS inference"), f"batched_{run}", args.figures,
                    source="bench/bench_batched_ckks.py")
        return

    weights = resolve_weights(args.weights) if args.data else None
    per_class = 24 if args.quick else None
    big = load_chest_images(args.data, 224 if weights else 64, n_per_class=per_class, seed=0)
    small_images = _resize_stack(big.images, 28)  # rung 4's input: the same images, downsampled (bilinear)
    split = stratified_split(big.labels, big.hashes, fractions=(0.8, 0.1, 0.1), seed=0)
    train, test = split["train"], split["test"]
    y_train, y_test, k = big.labels[train], big.labels[test], len(big.class_names)
    features, extractor, described = client_features(big.images, big.hashes, weights, args.cache)
    feature_range = FeatureRange.fit(features[train])
    scaled_test = np.clip(feature_range.transform(np.clip(features[test], feature_range.low, feature_range.high)),
                          0, 1)
    mlp_net = rung3.train_keras_mlp(feature_range.transform(features[train]), y_train, hidden=args.hidden,
                                    n_classes=k, epochs=3 if args.quick else 30)
    mlp = rung3.mlp_from_keras(mlp_net, feature_range)
    spec = rung4.CNNSpec(image_size=28, n_classes=k)
    cnn = rung4.cnn_from_keras(rung4.train_keras_cnn(small_images[train], y_train, spec, "square",
                                                     epochs=1 if args.quick else args.cnn_epochs),
                               spec, calibration=small_images[train])
    sizes = [1, 8, 32] if args.quick else [64, 256, 1024, 4096]
    rows = rung_rows(3, f"MLP head ({described}, hidden {args.hidden})", COLUMNS_MLP_8192, mlp, scaled_test,
                     y_test, rung3.plain_mlp_scores(mlp, scaled_test), sizes)
    rows += rung_rows(4, "CNN on 28-px pixels (conv 8x8/4, 3 filters, dense 64)", COLUMNS_CNN_8192, cnn,
                      small_images[test], y_test, rung4.plain_cnn_scores(cnn, small_images[test]), sizes)
    table = pd.DataFrame(rows)
    table.insert(0, "dataset", big.name)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    table.to_csv(Path(args.results) / f"batched_{run}.csv", index=False)
    from ppdl_utils.reporting.figures import save_figure

    save_figure(plot(table, f"{big.name}: batched CKKS inference"), f"batched_{run}", args.figures,
                source="bench/bench_batched_ckks.py")
    print(table[["rung", "batch_size", "amortized_ms_per_image", "latency_ms", "mismatches_vs_twin", "accuracy",
                 "twin_accuracy"]].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
