"""Batched CKKS inference for rungs 3 (MLP head on encrypted features) and 4 (CNN on encrypted 28-px pixels):
every test image of notebook 03's split classified encrypted and compared with the plaintext twin, then the
server's amortized cost against the batch size.

    python bench/bench_batched_ckks.py --data ../shared/data/covid19_radiography_2class
    python bench/bench_batched_ckks.py --quick          # synthetic default, tiny batches (seconds)

Writes ``results/<run>/batched.csv`` (one row per rung and batch size; ``mismatches_vs_twin`` and the
accuracies are over the whole test split, evaluated in batches of the largest size) and
``figures/<run>/batched.png``, and records them in ``results/<run>/MANIFEST.json``.  CPU seconds from
``time.process_time`` (SEAL runs one thread).  Batches larger than the test split repeat its images: the cost
of a batch does not depend on its values.
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
from ppdl_utils.learning import encrypted_cnn as rung4  # noqa: E402
from ppdl_utils.learning import encrypted_mlp as rung3  # noqa: E402
from ppdl_utils.learning.batched_rungs import batched_scores  # noqa: E402
from ppdl_utils.outputs import record_outputs, results_path, run_dir  # noqa: E402
from ppdl_utils.studies.ladder import batched_row, train_rung_models  # noqa: E402
from ppdl_utils.studies.private_pipeline import client_features  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRODUCER = "bench/bench_batched_ckks.py"


def rung_rows(rung: int, name: str, params, model, test_inputs, y_test, twin_scores, batch_sizes) -> list[dict]:
    whole = batched_row(rung, name, params, model, test_inputs, y_test, twin_scores)  # every test image
    common = {"rung": rung, "model": name, "n_test": whole["n_test"],
              **{k: whole[k] for k in ("mismatches_vs_twin", "accuracy", "twin_accuracy", "max_score_error",
                                       "min_twin_margin")},
              "ckks": params.describe(), "evaluation_key_bytes": whole["context_bytes"]}
    key_holder = ColumnKeyHolder(params)
    server = ColumnServer(params, key_holder.public_keys(), key_holder.fingerprint)
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
    parser.add_argument("--weight-bits", type=int, default=8,
                        help="rung 3 first-layer weights, levels per hidden unit (one product per distinct weight)")
    parser.add_argument("--cnn-epochs", type=int, default=15)
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--figures", default=str(ROOT / "figures"))
    parser.add_argument("--cache", default=str(ROOT / "cache" / "features"))
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the results file")
    args = parser.parse_args()
    run = run_name(args.data, args.quick)
    if args.plot_only:
        table = pd.read_csv(run_dir(args.results, run) / "batched.csv")
        from ppdl_utils.reporting.figures import save_figure

        save_figure(plot(table, f"{table.dataset.iloc[0]}: batched CKKS inference"), "batched", args.figures,
                    run=run, source="bench/bench_batched_ckks.py")
        record_outputs(run, PRODUCER, root=args.results)
        return

    weights = resolve_weights(args.weights) if args.data else None
    per_class = 24 if args.quick else None
    big = load_chest_images(args.data, 224 if weights else 64, n_per_class=per_class, seed=0)
    small_images = _resize_stack(big.images, 28)  # rung 4's input: the same images, downsampled (bilinear)
    features, extractor, described = client_features(big.images, big.hashes, weights, args.cache)
    models = train_rung_models(features, small_images, big.labels, big.hashes, len(big.class_names),
                               mlp_hidden=args.hidden, mlp_epochs=3 if args.quick else 30,
                               cnn_epochs=1 if args.quick else args.cnn_epochs, relu_twin=False,
                               mlp_weight_bits=args.weight_bits)
    mlp, cnn, y_test = models.mlp, models.cnn, models.y_test
    sizes = [1, 8, 32] if args.quick else [64, 256, 1024, 4096]
    rows = rung_rows(3, f"MLP head ({described}, hidden {args.hidden}, {args.weight_bits}-bit first layer)",
                     COLUMNS_MLP_8192, mlp,
                     models.test_features, y_test, rung3.plain_mlp_scores(mlp, models.test_features), sizes)
    rows += rung_rows(4, "CNN on 28-px pixels (conv 8x8/4, 3 filters, dense 64)", COLUMNS_CNN_8192, cnn,
                      models.test_images, y_test, rung4.plain_cnn_scores(cnn, models.test_images), sizes)
    table = pd.DataFrame(rows)
    table.insert(0, "dataset", big.name)
    table["float_model_accuracy"] = np.where(table.rung == 3, models.mlp_float_accuracy, np.nan)
    table.to_csv(results_path(run, "batched.csv", args.results), index=False)
    from ppdl_utils.reporting.figures import save_figure

    save_figure(plot(table, f"{big.name}: batched CKKS inference"), "batched", args.figures, run=run,
                source="bench/bench_batched_ckks.py")
    record_outputs(run, PRODUCER, root=args.results)
    print(table[["rung", "batch_size", "amortized_ms_per_image", "latency_ms", "mismatches_vs_twin", "accuracy",
                 "twin_accuracy"]].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
