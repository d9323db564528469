"""Cost of the private pipeline (notebook 10) on one core: training step against n, batched inference
against the batch size, single-image latency, key sizes, the client's backbone time and peak memory.

    python bench/bench_private_pipeline.py --data ../shared/data/covid19_radiography_2class
    python bench/bench_private_pipeline.py --quick            # synthetic pixels, seconds

Writes ``results/bench/private_pipeline_<run>_training.csv`` and ``..._inference.csv`` (server and client
CPU seconds from ``time.process_time``; SEAL and TenSEAL run one thread).  Accuracy is notebook 10's job.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ppdl_utils.config import resolve_weights, run_name  # noqa: E402
from ppdl_utils.crypto.ckks import peak_rss_mb  # noqa: E402
from ppdl_utils.crypto.ckks_packed import PACKED_4096, KeyHolder, PackedServer  # noqa: E402
from ppdl_utils.data.sources import load_chest_images  # noqa: E402
from ppdl_utils.learning.private_head import ClearOracle, encrypted_predict, fit_logistic_head  # noqa: E402
from ppdl_utils.outputs import BENCH, record_outputs, results_path  # noqa: E402
from ppdl_utils.studies.private_pipeline import client_features, cost_against_n  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def backbone_ms_per_image(images: np.ndarray, weights: str, n: int = 32) -> float:
    """Wall milliseconds per image of the multi-block backbone on one thread (the client's main cost)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from ppdl_utils.learning.features import multiblock_features

    multiblock_features(images[:4], weights, progress=False)  # build and warm up
    start = time.perf_counter()
    multiblock_features(images[:n], weights, progress=False)
    return 1000 * (time.perf_counter() - start) / min(n, len(images))


def inference_rows(features: np.ndarray, labels: np.ndarray, n_classes: int, extractor: str,
                   batch_sizes: list[int]) -> list[dict]:
    head, _ = fit_logistic_head(ClearOracle(features), labels, n_classes, max_steps=30, extractor=extractor,
                                feature_low=features.min(0), feature_high=features.max(0), progress=False)
    key_holder = KeyHolder(PACKED_4096)
    server = PackedServer(PACKED_4096, key_holder.public_keys(), key_holder.fingerprint)
    rows = []
    for batch in batch_sizes:
        x = features[:batch]
        start = time.perf_counter()
        scores, costs = encrypted_predict(key_holder, server, head, x, extractor)
        wall = time.perf_counter() - start
        twin = head.scores(x)
        same = (scores.argmax(1) == twin.argmax(1)) if scores.shape[1] > 1 else ((scores > 0) == (twin > 0))[:, 0]
        rows.append({"batch_size": len(x), "amortized_server_ms_per_image": 1000 * costs["server_s"] / len(x),
                     "client_encrypt_ms_per_image": 1000 * costs["client_encrypt_s"] / len(x),
                     "client_decrypt_ms_per_image": 1000 * costs["client_decrypt_s"] / len(x),
                     "latency_ms": 1000 * (costs["client_encrypt_s"] + costs["server_s"] + costs["client_decrypt_s"]),
                     "wall_ms_incl_serialization": 1000 * wall,
                     "bytes_up": costs["bytes_up"], "bytes_down": costs["bytes_down"],
                     "weights_bytes": costs["weights_bytes"], "mismatches_vs_twin": int((~same).sum()),
                     "evaluation_key_bytes": len(key_holder.public_keys()), "peak_rss_mb": peak_rss_mb()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="class folders; omitted: the synthetic default (pixels)")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds), outputs named _quick")
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--cache", default=str(ROOT / "cache" / "features"))
    args = parser.parse_args()

    weights = resolve_weights(args.weights) if args.data else None
    size = 224 if weights else 64
    dataset = load_chest_images(args.data, size, n_per_class=40 if args.quick else None, seed=0)
    features, extractor, described = client_features(dataset.images, dataset.hashes, weights, args.cache)
    n_classes = len(dataset.class_names)
    print(dataset, "|", described)
    n_train = int(0.8 * len(features))
    sizes = [n_train // 4, n_train // 2, n_train] if not args.quick else [16, 32, 64]
    training = cost_against_n(features, dataset.labels, n_classes, extractor, sizes, steps=1 if args.quick else 3)
    training["n_features"] = features.shape[1]
    training["ckks"] = PACKED_4096.describe()
    batches = [1, 16, 64, 256, 1024] if not args.quick else [1, 8, 32]
    inference = pd.DataFrame(inference_rows(features, dataset.labels, n_classes, extractor,
                                            [b for b in batches if b <= len(features)]))
    inference["n_features"] = features.shape[1]
    inference["backbone_ms_per_image"] = backbone_ms_per_image(dataset.images, weights) if weights else 0.0
    run = run_name(args.data, args.quick)
    training.to_csv(results_path(BENCH, f"private_pipeline_{run}_training.csv", args.results), index=False)
    inference.to_csv(results_path(BENCH, f"private_pipeline_{run}_inference.csv", args.results), index=False)
    record_outputs(BENCH, "bench/bench_private_pipeline.py", root=args.results)
    print(training.round(3).to_string(index=False))
    print(inference.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
