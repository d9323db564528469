"""Private inference cost per image, one core: Paillier (2048-bit, packed scores) and LWE
(n = 1024, q = 2^27), each as a ratio to the plaintext head on the same features.

    venv/bin/python bench/bench_private_inference.py [--features 1280] [--classes 4] [--images 5]

Features are random (the cost does not depend on their values); the heads are fitted on them.
Writes results/bench/private_inference.json (and its MANIFEST.json).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.learning import private_inference as pi
from ppdl_utils.outputs import record_beside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=1280, help="MobileNetV2 pooled features: 1280")
    parser.add_argument("--lwe-features", type=int, default=32)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--out", default="results/bench/private_inference.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, args.features))
    labels = rng.integers(0, args.classes, 400)
    test = rng.normal(size=(args.images, args.features))
    paillier_head = pi.fit_quantized_head(train, labels)
    paillier_key = generate_keypair(args.bits, allow_insecure=True)  # a benchmark key, never saved
    paillier_run = pi.run_paillier(paillier_head, paillier_key, paillier_head.quantize_features(test))
    lwe_head = pi.fit_quantized_head(train[:, :args.lwe_features], labels, feature_bits=5, **pi.lwe_head_budgets())
    lwe_run = pi.run_lwe(lwe_head, lwe.keygen(pi.LWE_INFERENCE),
                         lwe_head.quantize_features(test[:, :args.lwe_features]))
    rows = [paillier_run.summary() | {"features": args.features},
            lwe_run.summary() | {"features": args.lwe_features}]
    print(f"{args.classes} classes, {args.images} images, one core\n")
    print("| scheme | features | encrypt ms | server ms | decrypt ms | end to end ms | x plaintext head "
          "| bytes up | bytes down | mismatches |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scheme']} | {r['features']} | {r['client_encrypt_ms']:.1f} | {r['server_ms']:.1f} | "
              f"{r['client_decrypt_ms']:.2f} | {r['end_to_end_ms']:.1f} | {r['ratio_to_plaintext_head']:,.0f} | "
              f"{r['bytes_up']:,} | {r['bytes_down']:,} | {r['mismatches']} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps([{k: (float(v) if isinstance(v, np.floating) else v)
                                           for k, v in r.items()} for r in rows], indent=1))
    record_beside("bench/bench_private_inference.py", args.out)


if __name__ == "__main__":
    main()
