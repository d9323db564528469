"""Measured cost of Paillier operations per key size (what notebook 01 plots)."""
from __future__ import annotations

import time
from typing import Callable

import pandas as pd
from tqdm.auto import tqdm

from ppdl_utils.crypto.cipher_array import CRTDecryptor
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import generate_keypair, security_bits


def per_call_seconds(function: Callable[[], object], repeats: int) -> float:
    """Mean wall time of one call over `repeats` calls."""
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def time_key_sizes(bit_sizes: list[int], keygen_repeats: int = 2, operations: int = 20,
                   progress: bool = True) -> pd.DataFrame:
    """Key generation, encryption (phe's and ours) and decryption time for each modulus size."""
    rows = []
    for bits in tqdm(bit_sizes, desc="key sizes", disable=not progress):
        keys = []
        keygen = per_call_seconds(lambda: keys.append(generate_keypair(bits, allow_insecure=True)), keygen_repeats)
        key = keys[-1]
        phe_public = key.public.to_phe()
        fast = FastEncryptor(key)
        textbook = FastEncryptor(key, exponent_bits=None)
        c = int(fast.encrypt(123))
        decrypt = CRTDecryptor(key)
        rows.append({
            "modulus_bits": bits,
            "security_bits": security_bits(bits),
            "keygen_s": keygen,
            "phe_encrypt_ms": 1e3 * per_call_seconds(lambda: phe_public.encrypt(123), operations),
            "crt_encrypt_ms": 1e3 * per_call_seconds(lambda: textbook.encrypt(123), operations),
            "fast_encrypt_ms": 1e3 * per_call_seconds(lambda: fast.encrypt(123), operations * 10),
            "decrypt_ms": 1e3 * per_call_seconds(lambda: decrypt(c), operations),
            "ciphertext_bytes": key.public.ciphertext_nbytes,
        })
    return pd.DataFrame(rows)
