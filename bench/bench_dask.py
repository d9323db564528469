"""Dask throughput of randomized Paillier encryption (+ mod256 rendering) with 1 and 2 workers,
the per-chunk overhead, and the projection to 64 and 512 cores.

    nice -n 5 venv/bin/python bench/bench_dask.py --data-dir /work/shared/data/covid19_radiography_2class \\
        [--max-per-class 100] [--size 128] [--bits 2048] [--workers 1,2] [--chunk-size N] \\
        [--inference-images 8] [--synthetic 200]

For each worker count a fresh LocalCluster (single-threaded worker processes) is started and
warmed up (modules imported), then :func:`ppdl_utils.scale.encrypt_dataset.encrypt_dataset`
encrypts the images into a temporary folder.  Measured:

* throughput = encryptions (pixels) per second of wall time (first submission to last chunk
  written: cluster start-up excluded, client-side writes included);
* per-core rate = pixels / sum of the tasks' own compute times;
* overhead = workers x wall - sum of task compute times (idle core-seconds), per chunk and as a
  % of task time; split into the end tail (workers idle after their last task, the last wave)
  and the rest (scheduling, transfers, the client writing chunks), from Dask's task stream.

Then private inference (MobileNetV2-sized random features, 1280 x 2 classes) on a one-worker
client cluster and a one-worker server cluster gives per-image core-seconds per stage.
Writes results/bench/dask.csv and results/bench/dask_projection.csv and prints both tables with
the load average (this machine is shared: compare the numbers with the load).
"""
from __future__ import annotations

import argparse
import csv
import importlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ppdl_utils.config import data_path
from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.outputs import record_beside
from ppdl_utils.scale.cluster import dask_client
from ppdl_utils.scale.encrypt_dataset import default_chunk_size, encrypt_dataset
from ppdl_utils.scale.projection import projection_table

WARM_MODULES = ("ppdl_utils.scale.encrypt_dataset", "ppdl_utils.scale.private_inference")


def load_average() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


def load_images(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    if args.synthetic:
        rng = np.random.default_rng(0)  # Paillier's cost does not depend on the pixel values
        return rng.integers(0, 256, (args.synthetic, args.size, args.size), dtype=np.uint8), "synthetic"
    from ppdl_utils.data.loaders import load_image_folder

    dataset = load_image_folder(args.data_dir, size=args.size, max_per_class=args.max_per_class)
    return dataset.images, str(args.data_dir)


def tail_idle(stream: list[dict], workers: list[str], start: float, end: float) -> float:
    """Core-seconds the workers sat idle after their last task (the last wave's imbalance; a
    worker that got no task at all was idle throughout)."""
    last: dict[str, float] = {w: start for w in workers}
    for record in stream:
        for part in record.get("startstops", ()):
            if part.get("action") == "compute":
                last[record["worker"]] = max(last.get(record["worker"], 0.0), part["stop"])
    return sum(max(0.0, end - stop) for stop in last.values())


def measure(images: np.ndarray, key, workers: int, chunk_size: int | None, folder: Path) -> dict:
    from distributed import get_task_stream

    with dask_client(n_workers=workers) as client:
        for module in WARM_MODULES:  # a real job pays this once per worker; keep it out of the rate
            client.run(importlib.import_module, module)
        addresses = list(client.nthreads())
        with get_task_stream(client=client) as stream:
            start = time.time()
            report = encrypt_dataset(images, key, folder, chunk_size=chunk_size, scheduler=client, progress=True)
            end = time.time()
        records = [r for r in stream.data
                   if str(r.get("key", "")).startswith("ppdl-encrypt-") and "spec" not in str(r["key"])]
    task_s = sum(report.task_seconds.values())
    pixels = images.size
    chunks = len(report.computed)
    overhead = report.overhead_core_seconds
    tail = min(tail_idle(records, addresses, start, end), overhead)
    return {"workers": workers, "cores": report.cores, "images": len(images), "image_side": images.shape[-1],
            "chunk_size": report.manifest.chunk_size, "chunks": chunks, "wall_s": report.wall_seconds,
            "task_s": task_s, "throughput_enc_per_s": pixels / report.wall_seconds,
            "rate_per_core_enc_per_s": pixels / task_s, "overhead_core_s": overhead,
            "overhead_per_chunk_s": overhead / chunks, "overhead_pct_of_task": 100 * overhead / task_s,
            "tail_core_s": tail, "scheduling_per_chunk_s": (overhead - tail) / chunks,
            "scheduling_pct_of_task": 100 * (overhead - tail) / task_s}


def measure_inference(bits: int, n_images: int, features: int = 1280, classes: int = 2) -> dict:
    from ppdl_utils.learning.private_inference import fit_quantized_head
    from ppdl_utils.scale.private_inference import batch_private_inference

    rng = np.random.default_rng(0)
    head = fit_quantized_head(rng.normal(size=(400, features)), rng.integers(0, classes, 400))
    quantized = head.quantize_features(rng.normal(size=(n_images, features)))
    key = generate_keypair(bits, allow_insecure=True)
    with dask_client(n_workers=1) as client, dask_client(n_workers=1) as server:
        for c in (client, server):
            c.run(importlib.import_module, WARM_MODULES[1])
        result = batch_private_inference(head, key, quantized, client_scheduler=client, server_scheduler=server,
                                         rows_per_chunk=max(1, n_images // 2), progress=False)
    per_image = result.per_image_seconds()
    stages = sum(result.task_seconds.values())
    return {"images": n_images, "features": features, "mismatches": result.mismatches, "chunks": result.chunks,
            **{f"{k}_s_per_image": v for k, v in per_image.items()}, "wall_s": result.wall_seconds,
            "overhead_per_chunk_s": max(0.0, 2 * result.wall_seconds - stages) / (3 * result.chunks)}


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def print_tables(rows: list[dict], inference: dict, projections: list, load: str) -> None:
    print(f"\nrandomized encryption + mod256 rendering, {rows[0]['images']} images at {rows[0]['image_side']} px, "
          f"chunk {rows[0]['chunk_size']} images ({load})\n")
    print("| workers | wall s | enc/s | speed-up | per-core enc/s | overhead % of task | of which tail % | "
          "scheduling % | per-chunk overhead s |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {r['throughput_enc_per_s']:,.0f} | {r['speedup']:.2f}x | "
              f"{r['rate_per_core_enc_per_s']:,.0f} | {r['overhead_pct_of_task']:.1f} | "
              f"{100 * r['tail_core_s'] / r['task_s']:.1f} | {r['scheduling_pct_of_task']:.1f} | "
              f"{r['overhead_per_chunk_s']:.3f} |")
    print(f"\nprivate inference, {inference['images']} images x {inference['features']} features, per image: "
          f"encrypt {inference['encrypt_s_per_image']:.3f} s, server {inference['server_s_per_image']:.3f} s, "
          f"decrypt {inference['decrypt_s_per_image']:.4f} s (core-seconds), mismatches {inference['mismatches']}")
    print("\n| workload | cores | tasks | core-hours | compute s | scheduler s | network s | projected | bound |"
          "\n|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for p in projections:
        print(f"| {p.workload} | {p.cores} | {p.tasks:,} | {p.core_hours:.2f} | {p.waves_s:,.0f} | "
              f"{p.scheduler_s:,.0f} | {p.transfer_s:,.0f} | {p.projected_s / 60:,.1f} min | {p.bound} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=data_path("covid19_radiography_2class"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--max-per-class", type=int, default=100)
    parser.add_argument("--synthetic", type=int, default=0, help="use N random images instead of --data-dir")
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: ~65,536 pixels per chunk")
    parser.add_argument("--inference-images", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("results/bench/dask.csv"))
    args = parser.parse_args()

    images, source = load_images(args)
    key = generate_keypair(args.bits, allow_insecure=True)
    before = load_average()
    print(f"{len(images)} images {images.shape[1:]} from {source}; {args.bits}-bit key; "
          f"default chunk {default_chunk_size(images.shape)} images; {before}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(w) for w in args.workers.split(",")):
            rows.append(measure(images, key, workers, args.chunk_size, Path(tmp) / f"w{workers}"))
            print(f"  {workers} worker(s): {rows[-1]['throughput_enc_per_s']:,.0f} enc/s ({load_average()})")
    for r in rows:
        r["speedup"] = r["throughput_enc_per_s"] / rows[0]["throughput_enc_per_s"]
        r["source"], r["key_bits"] = source, args.bits
    inference = measure_inference(args.bits, args.inference_images)
    base = rows[0]
    projections = projection_table(base["rate_per_core_enc_per_s"], rows[-1]["scheduling_per_chunk_s"],
                                   {k: inference[f"{k}_s_per_image"] for k in ("encrypt", "server", "decrypt")},
                                   inference["overhead_per_chunk_s"])
    load = f"before: {before}; after: {load_average()}"
    for r in rows:
        r["load"] = load
    write_csv(args.out, rows)
    write_csv(args.out.with_name(args.out.stem + "_projection.csv"), [p.row() for p in projections])
    record_beside("bench/bench_dask.py", args.out, args.out.with_name(args.out.stem + "_projection.csv"))
    print_tables(rows, inference, projections, load)


if __name__ == "__main__":
    main()
