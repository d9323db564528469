"""Benchmark Paillier, textbook RSA and LWE at their default parameters, on one core.

    venv/bin/python bench/bench_schemes.py [--quick]

Per (scheme, regime): key generation, the regime's one-off setup, encryption and decryption
time per element and per 64x64 image (a synthetic knee radiograph, so deterministic regimes see
a realistic number of distinct values), and ciphertext bytes per plaintext byte.  Prints a
markdown table and writes results/bench/schemes.json (results/bench/schemes_quick.json with
--quick, which measures 256 / 32 elements and scales them to the image; the JSON says which).
The full run decrypts a whole image under each Paillier regime (~10 s each): about a minute.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Thread counts must be set before numpy loads, so these imports follow the set-up above.
import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ppdl_utils.analysis import scheme_comparison as sc  # noqa: E402
from ppdl_utils.crypto import lwe  # noqa: E402
from ppdl_utils.crypto import rsa_textbook as rsa  # noqa: E402
from ppdl_utils.crypto.paillier import generate_keypair  # noqa: E402
from ppdl_utils.data.synthetic import make_knee_xray_like  # noqa: E402
from ppdl_utils.outputs import BENCH, record_outputs, results_path  # noqa: E402

IMAGE_SIZE = 64


def pin_one_core() -> str:
    """Run on a single CPU where the OS allows it; return what was done."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity); numeric libraries limited to 1 thread"


def mean_seconds(function, repeats: int) -> tuple[object, float]:
    """Last result and mean wall time of `repeats` calls."""
    start = time.perf_counter()
    for _ in range(repeats):
        result = function()
    return result, (time.perf_counter() - start) / repeats


def keygen_times(repeats: int) -> tuple[sc.SchemeKeys, dict[str, float]]:
    """Default keys (2048-bit Paillier and RSA, LWE DEFAULT) and their mean generation time."""
    paillier, t_p = mean_seconds(lambda: generate_keypair(2048), repeats)
    rsa_key, t_r = mean_seconds(lambda: rsa.keygen(2048), repeats)
    lwe_key, t_l = mean_seconds(lambda: lwe.keygen(lwe.DEFAULT), repeats)
    return sc.SchemeKeys(paillier, rsa_key, lwe_key), {"paillier": t_p, "rsa": t_r, "lwe": t_l}


def bench_one(scheme: str, regime: str, keys: sc.SchemeKeys, image: np.ndarray,
              encrypt_elements: int, decrypt_elements: int, repeats: int) -> dict[str, object]:
    """Times of one (scheme, regime) on the first elements of `image`, scaled to the whole image.
    Encryption: mean of `repeats` calls after one warm-up call (first-touch memory); decryption: one call."""
    start = time.perf_counter()
    encryptor = sc.make_encryptor(scheme, regime, keys)
    setup_s = time.perf_counter() - start
    flat = image.reshape(-1)
    enc_part = flat[:encrypt_elements]
    encryptor.encrypt(enc_part)  # warm-up
    _, enc_s = mean_seconds(lambda: encryptor.encrypt(enc_part), repeats)
    dec_part = flat[:decrypt_elements]
    small = encryptor.encrypt(dec_part)
    plain, dec_s = mean_seconds(lambda: encryptor.decrypt(small), 1)
    assert np.array_equal(np.asarray(plain).ravel(), dec_part), f"{scheme} {regime}: decryption is not exact"
    info = sc.security_info(scheme, regime, keys)
    per_el_enc, per_el_dec = enc_s / enc_part.size, dec_s / dec_part.size
    return {"scheme": scheme, "regime": regime, "label": info.label, "setup_s": setup_s,
            "encrypt_us_per_element": 1e6 * per_el_enc, "decrypt_us_per_element": 1e6 * per_el_dec,
            "encrypt_s_per_image": per_el_enc * flat.size, "decrypt_s_per_image": per_el_dec * flat.size,
            "bytes_per_plaintext_byte": encryptor.bytes_per_element,
            "security_bits": info.security_bits, "post_quantum": info.post_quantum,
            "encrypt_elements_measured": int(enc_part.size), "decrypt_elements_measured": int(dec_part.size)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer elements and key generations (scaled)")
    args = parser.parse_args(argv)
    pinned = pin_one_core()
    repeats = 1 if args.quick else 3
    encrypt_elements = 256 if args.quick else IMAGE_SIZE * IMAGE_SIZE
    decrypt_elements = 32 if args.quick else IMAGE_SIZE * IMAGE_SIZE
    image = make_knee_xray_like(n_per_class=1, size=IMAGE_SIZE, seed=0, classes=["Normal"]).images[0]
    keys, keygen_s = keygen_times(repeats)
    rows = [bench_one(scheme, regime, keys, image, encrypt_elements, decrypt_elements, repeats)
            for scheme, regime in sc.DEFAULT_CONFIGS if scheme != "plain"]
    for row in rows:
        row["keygen_s"] = keygen_s[row["scheme"]]
    table = pd.DataFrame(rows)
    shown = ["scheme", "label", "keygen_s", "setup_s", "encrypt_us_per_element", "decrypt_us_per_element",
             "encrypt_s_per_image", "decrypt_s_per_image", "bytes_per_plaintext_byte", "security_bits",
             "post_quantum"]
    print(f"# Schemes at default parameters, one core ({pinned}); image {IMAGE_SIZE}x{IMAGE_SIZE}"
          f"{' (QUICK: scaled from fewer elements)' if args.quick else ''}\n")
    print(sc.markdown_table(table[shown], digits=4))
    meta = {"quick": args.quick, "cpu": pinned, "python": platform.python_version(),
            "machine": platform.machine(), "processor": platform.processor(), "image_size": IMAGE_SIZE,
            "keygen_repeats": repeats, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "notes": ("per-image times = per-element times x 4096; encryption of deterministic regimes "
                      "encrypts each distinct value once (table / unique values), which only they allow; "
                      "decryption of Paillier deterministic regimes and of LWE is per element, RSA decrypts "
                      "each distinct ciphertext once")}
    out = results_path(BENCH, "schemes_quick.json" if args.quick else "schemes.json", ROOT / "results")
    out.write_text(json.dumps({"meta": meta, "keygen_s": keygen_s, "rows": rows}, indent=1))
    record_outputs(BENCH, "bench/bench_schemes.py", root=ROOT / "results")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
