"""Shared fixtures: keys are costly to generate, so each size is made once per session."""
from __future__ import annotations

import os

import pytest
from hypothesis import settings

from ppdl_utils.crypto.paillier import PaillierPrivateKey, generate_keypair

settings.register_profile("ppdl", max_examples=int(os.environ.get("PPDL_HYPOTHESIS_EXAMPLES", "40")),
                          deadline=None)
settings.load_profile("ppdl")


@pytest.fixture(scope="session")
def key2048() -> PaillierPrivateKey:
    """A realistic 2048-bit key, as used by default everywhere."""
    return generate_keypair(2048)


@pytest.fixture(scope="session")
def other_key() -> PaillierPrivateKey:
    """A second, unrelated key (smaller, to keep the suite fast) for wrong-key checks."""
    return generate_keypair(1024, allow_insecure=True)
