"""Rungs 2-5 of the privacy ladder on real chest X-rays, without the notebook: the same study as notebook 08
(``ppdl_utils.studies.ladder``: a linear head under packed Paillier and under LWE for rung 2, batched CKKS
for rungs 3-4, the private pipeline's head for rung 5, every test image of notebook 03's split), paired
with notebook 03's plain model (McNemar) when its run records are in ``--results``.

    python bench/bench_privacy_ladder.py --data ../shared/data/covid19_radiography_2class
    python bench/bench_privacy_ladder.py --quick            # synthetic default, tiny sizes

Writes ``results/bench/privacy_ladder_<run>.csv`` (one row per rung; server CPU milliseconds per image
amortized over the batch, ``time.process_time``, SEAL on one thread).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ppdl_utils.config import resolve_weights, run_name  # noqa: E402
from ppdl_utils.data.loaders import _resize_stack  # noqa: E402
from ppdl_utils.data.sources import load_chest_images  # noqa: E402
from ppdl_utils.outputs import BENCH, record_outputs, results_path  # noqa: E402
from ppdl_utils.records import RecordError, load_records  # noqa: E402
from ppdl_utils.reporting.ladder import ladder_table, record_rows  # noqa: E402
from ppdl_utils.studies.ladder import encrypted_rungs  # noqa: E402
from ppdl_utils.studies.private_pipeline import client_features  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="class folders or a MedMNIST .npz; omitted: synthetic")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mlp-hidden", type=int, default=8)
    parser.add_argument("--cnn-epochs", type=int, default=15)
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--cache", default=str(ROOT / "cache" / "features"))
    args = parser.parse_args()
    weights = resolve_weights(args.weights) if args.data else None
    dataset = load_chest_images(args.data, 224 if weights else 64, n_per_class=24 if args.quick else None, seed=0)
    features, extractor, _ = client_features(dataset.images, dataset.hashes, weights, args.cache)
    rows = encrypted_rungs(dataset.name, features, extractor, _resize_stack(dataset.images, 28), dataset.labels,
                           dataset.hashes, len(dataset.class_names), mlp_hidden=args.mlp_hidden,
                           cnn_epochs=2 if args.quick else args.cnn_epochs, max_steps=8 if args.quick else 60)
    run = run_name(args.data, args.quick)
    try:  # rungs 0-1 and plain's predictions for the paired test, when notebook 03 ran on this data
        rows += record_rows(load_records(args.results, run))
    except RecordError as missing:
        print(missing, "-> no rungs 0-1, no paired test")
    table = ladder_table(rows)
    table.to_csv(results_path(BENCH, f"privacy_ladder_{run}.csv", args.results), index=False)
    record_outputs(BENCH, "bench/bench_privacy_ladder.py", root=args.results)
    print(table[["name", "accuracy", "accuracy_ci95", "mcnemar_p_vs_plain", "n_test", "server_ms",
                 "mismatches_vs_twin"]].to_string())


if __name__ == "__main__":
    main()
