"""Rendering statistics of every key draw, measured afterwards from the encrypted cache, and whether
they predict the accuracy across draws (what explains the spread).

    venv/bin/python bench/key_draw_rendering.py --data-dir ../shared/data/covid19_radiography_2class \\
        [--image-size 128] [--cache-dir cache/encrypted] [--draws results/<run>/04_key_draws.csv]

Notebook 03 records ``distinct_values``, ``merged_levels`` and ``merge_spread`` per model; records
made before a statistic existed (``level_jump``: how far the rendering moves adjacent gray levels
apart) lack it.  The cache keeps every key's rendered images (what the server trains on), so the
statistics can be measured again for every key whose cache entry is still there.  Writes
results/<run>/04_key_draw_rendering.csv (one row per key and regime) and prints the Spearman
correlations of :func:`ppdl_utils.reporting.key_draws.spread_predicts_accuracy`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ppdl_utils.config import run_name
from ppdl_utils.data.sources import load_chest_images
from ppdl_utils.images.encrypted_cache import list_entries, read_entry
from ppdl_utils.images.render import rendering_stats
from ppdl_utils.outputs import record_beside, run_dir
from ppdl_utils.reporting.key_draws import attach_rendering_stats, bare_models, spread_predicts_accuracy

DETERMINISTIC = ("table", "fixed_r", "r_one")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="the data folder of the key draws")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--cache-dir", default="cache/encrypted")
    p.add_argument("--draws", default=None, help="notebook 04's key-draw CSV (default: from --data-dir)")
    args = p.parse_args()
    run = run_name(args.data_dir)
    draws_csv = Path(args.draws or run_dir("results", run) / "04_key_draws.csv")
    if not draws_csv.is_file():
        raise SystemExit(f"{draws_csv} not found: run make key_draws DATA={args.data_dir} first")
    draws = pd.read_csv(draws_csv)
    dataset = load_chest_images(args.data_dir, args.image_size, None)
    rows = []
    for entry in list_entries(args.cache_dir):
        if (entry.get("regime") in DETERMINISTIC and entry.get("key_fingerprint") in set(draws["key"])
                and entry.get("n_images") == len(dataset)
                and list(entry.get("image_shape", [])) == [args.image_size, args.image_size]):
            rendered, _ = read_entry(entry["path"])
            rows.append({"key": entry["key_fingerprint"], "regime": entry["regime"],
                         **rendering_stats(dataset.images, rendered)})
    if not rows:
        raise SystemExit(f"no cache entry in {args.cache_dir} for the keys of {draws_csv}")
    stats = pd.DataFrame(rows).drop_duplicates(["key", "regime"])
    out = draws_csv.with_name("04_key_draw_rendering.csv")
    stats.to_csv(out, index=False)
    record_beside("bench/key_draw_rendering.py", out)
    merged = attach_rendering_stats(draws, stats)
    bare = bare_models(merged)
    print(bare[["key", "label", "split_seed", "test_accuracy", "gap_points", *stats.columns[2:]]].round(3).to_string())
    print(spread_predicts_accuracy(merged).round(2).to_string())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
