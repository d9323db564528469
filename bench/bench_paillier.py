"""Paillier encryption speed at 2048 bits: phe's `encrypt` vs this package, side by side in one run.

    venv/bin/python bench/bench_paillier.py [--bits 2048] [--seconds 3] [--image-size 64]

One core for the per-operation rows (both sides run in this process, one after the other);
the whole-image row uses every core.  Writes results/bench/paillier.json (and its MANIFEST.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from ppdl_utils.crypto.cipher_array import CRTDecryptor
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import generate_keypair, security_label
from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.outputs import record_beside


def rate(function, seconds: float) -> float:
    """Calls per second of `function`, measured for about `seconds`."""
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        function()
        calls += 1
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", default="results/bench/paillier.json")
    args = parser.parse_args()

    key = generate_keypair(args.bits, allow_insecure=True)
    phe_public, phe_private = key.public.to_phe(), key.to_phe()
    textbook, fast = FastEncryptor(key, exponent_bits=None), FastEncryptor(key)
    c, decrypt = int(fast.encrypt(200)), CRTDecryptor(key)
    rows = {
        "phe encrypt (library baseline)": rate(lambda: phe_public.encrypt(200), args.seconds),
        "CRT encrypt, textbook r^n": rate(lambda: textbook.encrypt(200), args.seconds),
        f"CRT + fixed-base, {fast.exponent_bits}-bit short exponent": rate(lambda: fast.encrypt(200), args.seconds),
        "phe decrypt": rate(lambda: phe_private.raw_decrypt(c), args.seconds),
        "CRT decrypt (this package)": rate(lambda: decrypt(c), args.seconds),
    }
    baseline = rows["phe encrypt (library baseline)"]
    images = np.random.default_rng(0).integers(0, 256, (os.cpu_count() or 1, args.image_size, args.image_size),
                                               dtype=np.uint8)
    encryptor = ImageEncryptor(key)
    start = time.perf_counter()
    encryptor.encrypt_rendered(images, progress=False)
    per_image = (time.perf_counter() - start) / len(images)

    print(f"Paillier, {security_label(args.bits)}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores\n")
    print("| operation (one core) | per second | vs phe encrypt |\n|---|---:|---:|")
    for name, value in rows.items():
        print(f"| {name} | {value:,.0f} | {value / baseline:.1f}x |")
    print(f"\nrandomized encryption of a {args.image_size}x{args.image_size} image on {os.cpu_count()} "
          f"cores: {per_image:.2f} s/image ({args.image_size ** 2 / per_image:,.0f} pixels/s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "bits": args.bits, "short_exponent_bits": fast.exponent_bits, "per_second": rows,
        "speedup_vs_phe": {k: v / baseline for k, v in rows.items()},
        "image_size": args.image_size, "cores": os.cpu_count(), "seconds_per_image_all_cores": per_image,
    }, indent=1))
    record_beside("bench/bench_paillier.py", args.out)


if __name__ == "__main__":
    main()
