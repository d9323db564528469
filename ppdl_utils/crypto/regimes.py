"""Encryption regimes: how the randomness of a probabilistic scheme is (mis)used.

A CNN can only learn from ciphertext images when equal pixels give equal ciphertexts,
i.e. when the encryption is deterministic.  Deterministic encryption is a substitution
cipher over the 256 pixel values and is *not* semantically secure.  Only
``Regime.RANDOMIZED`` is called secure anywhere in this project.
"""
from __future__ import annotations

from enum import Enum

from ppdl_utils.crypto.security import ParameterError


class Regime(str, Enum):
    """How the per-element randomness of an encryption is chosen."""

    RANDOMIZED = "randomized"  # fresh randomness per element: semantically secure (IND-CPA)
    FIXED_R = "fixed_r"  # one secret randomness for every element: deterministic
    R_ONE = "r_one"  # Paillier with r = 1, c = 1 + n*m: anyone with the public key decrypts
    TABLE = "table"  # a secret table E(0..255) applied per pixel: deterministic substitution

    @property
    def is_semantically_secure(self) -> bool:
        return self is Regime.RANDOMIZED

    @property
    def label(self) -> str:
        """Short label for figures; deterministic regimes say so."""
        if self.is_semantically_secure:
            return f"{self.value} (semantically secure)"
        return f"{self.value} (deterministic, NOT secure)"

    @classmethod
    def parse(cls, value: "str | Regime") -> "Regime":
        """Accept a Regime or its string name; raise a clear ParameterError (a ValueError) otherwise."""
        if isinstance(value, Regime):
            return value
        try:
            return cls(str(value))
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise ParameterError(f"unknown encryption regime {value!r}; expected one of: {names}") from None


LEAKS: dict[Regime, str] = {
    Regime.RANDOMIZED: "nothing beyond the array shape (under the DCR assumption)",
    Regime.FIXED_R: "every pairwise pixel difference from public values; one known pixel reveals the image",
    Regime.R_ONE: "the whole image: m = (c - 1) / n with the public key alone",
    Regime.TABLE: "equality of pixel values (a 256-value substitution); one known image pair reveals the table",
}
