"""Rung 4 one image at a time (replicated slot layout, :mod:`ppdl_utils.learning.latency_cnn`): every test
image of notebook 03's split classified in its own encrypted round trip and compared with the plaintext twin.

    python bench/bench_single_image.py --data ../shared/data/covid19_radiography_2class
    python bench/bench_single_image.py --quick          # synthetic default, one epoch (seconds)

The square CNN is the ladder's (:func:`ppdl_utils.studies.ladder.train_square_cnn`: same images, split, epochs
and seed).  Writes ``results/<run>/single_image.csv`` (recorded in the run's MANIFEST.json): one row with the
twin comparison over the whole test split (mismatches, smallest twin margin, largest score error) and the
round trip's CPU time per image (``time.process_time``: SEAL runs one thread; set ``OMP_NUM_THREADS=1``),
split into client encryption, server and client decryption, with the bytes.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
for _name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):  # one core, as reported
    os.environ.setdefault(_name, "1")

from ppdl_utils.config import run_name  # noqa: E402
from ppdl_utils.crypto.ckks import peak_rss_mb  # noqa: E402
from ppdl_utils.crypto.ckks_slots import SLOTS_CNN_8192  # noqa: E402
from ppdl_utils.data.loaders import _resize_stack  # noqa: E402
from ppdl_utils.data.sources import load_chest_images  # noqa: E402
from ppdl_utils.data.splits import stratified_split  # noqa: E402
from ppdl_utils.learning import encrypted_cnn as rung4  # noqa: E402
from ppdl_utils.learning.latency_cnn import latency_layout, latency_parties, single_image_scores  # noqa: E402
from ppdl_utils.outputs import record_outputs, results_path  # noqa: E402
from ppdl_utils.studies.ladder import train_square_cnn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cnn-epochs", type=int, default=15)
    parser.add_argument("--results", default=str(ROOT / "results"))
    args = parser.parse_args()
    run = run_name(args.data, args.quick)

    big = load_chest_images(args.data, 224 if args.data else 64, n_per_class=24 if args.quick else None, seed=0)
    small_images = _resize_stack(big.images, 28)  # rung 4's input, as the ladder makes it (bilinear)
    split = stratified_split(big.labels, big.hashes, fractions=(0.8, 0.1, 0.1), seed=0)  # notebook 03's
    cnn = train_square_cnn(small_images[split["train"]], big.labels[split["train"]], len(big.class_names),
                           1 if args.quick else args.cnn_epochs)
    test = split["test"]
    test_images, y_test = small_images[test], big.labels[test]
    params = SLOTS_CNN_8192
    layout = latency_layout(cnn.spec, params)
    key_holder, server = latency_parties(cnn.spec, params)
    key_sizes = key_holder.key_bytes()
    process0, thread0 = time.process_time(), time.thread_time()
    scores, costs = single_image_scores(key_holder, server, cnn, test_images)
    # every thread of the process against this thread alone: equal when nothing else (Keras) ran meanwhile
    loop_process_s, loop_thread_s = time.process_time() - process0, time.thread_time() - thread0

    twin = rung4.plain_cnn_scores(cnn, test_images)
    predictions, twin_predictions = scores.argmax(1), twin.argmax(1)
    latency = np.array([c.latency_ms for c in costs])
    row = {"dataset": big.name, "rung": 4, "mode": "single image (replicated slots)",
           "model": f"CNN on 28-px pixels (conv {cnn.spec.kernel}x{cnn.spec.kernel}/{cnn.spec.stride}, "
                    f"{cnn.spec.n_filters} filters, dense {cnn.spec.hidden})",
           "n_test": len(test_images), "mismatches_vs_twin": int((predictions != twin_predictions).sum()),
           "accuracy": float((predictions == y_test).mean()),
           "twin_accuracy": float((twin_predictions == y_test).mean()),
           "max_score_error": float(np.abs(scores - twin).max()),
           "min_twin_margin": float(np.diff(np.sort(twin, axis=1)[:, -2:], axis=1).min()),
           "max_abs_score": float(np.abs(twin).max()), "score_bound": params.output_bound,
           "ckks": params.describe(), "layout": layout.describe(),
           "evaluation_key_bytes": key_sizes["relin"] + key_sizes["galois"],
           "relin_key_bytes": key_sizes["relin"], "galois_key_bytes": key_sizes["galois"],
           "rotation_keys": key_sizes["rotation_steps"],
           "latency_ms_median": float(np.median(latency)), "latency_ms_max": float(latency.max()),
           "client_encrypt_ms": 1000 * float(np.median([c.client_encrypt_s for c in costs])),
           "server_ms": 1000 * float(np.median([c.server_s for c in costs])),
           "client_decrypt_ms": 1000 * float(np.median([c.client_decrypt_s for c in costs])),
           "server_ms_max": 1000 * float(max(c.server_s for c in costs)),
           "bytes_up_per_image": float(np.mean([c.bytes_up for c in costs])),
           "bytes_down_per_image": float(np.mean([c.bytes_down for c in costs])),
           "peak_rss_mb": peak_rss_mb(), "loop_process_cpu_s": loop_process_s, "loop_thread_cpu_s": loop_thread_s,
           "timing": "CPU seconds of one thread (time.process_time, OMP_NUM_THREADS=1); "
                     "client/server/decrypt columns are medians over the test images"}
    out = results_path(run, "single_image.csv", args.results)
    pd.DataFrame([row]).to_csv(out, index=False)
    record_outputs(run, "bench/bench_single_image.py", root=args.results)
    print(pd.Series(row).to_string())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
