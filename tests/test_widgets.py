"""The teaching widgets recompute when driven from Python, as a student's clicks would."""
from __future__ import annotations

import numpy as np

from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.teaching.widgets import ImageEncryptionExplorer, PaillierPlayground


def test_playground_shows_the_additive_homomorphism():
    playground = PaillierPlayground(p=17, q=19, m1=42, m2=57)
    assert playground.state["n"] == 323
    assert playground.state["decrypted_sum"] == playground.state["expected_sum"] == 99
    playground.m2.value = 100
    assert playground.state["decrypted_sum"] == 142
    assert "142" in playground.output.value


def test_randomization_toggle_changes_equality_of_ciphertexts():
    playground = PaillierPlayground(p=1009, q=1013)
    assert playground.state["c1"] != playground.state["c1_again"]
    playground.randomized.value = False
    assert playground.state["c1"] == playground.state["c1_again"] == 1 + 42 * 1009 * 1013
    assert "SAME ciphertext" in playground.output.value


def test_bit_size_mode_and_bad_primes():
    playground = PaillierPlayground()
    playground.mode.value = "bit size"
    playground.bits.value = 128
    assert playground.state["n"].bit_length() == 128
    assert "hidden" in playground.output.value  # no lambda/mu shown beyond toy sizes
    playground.mode.value = "small primes"
    playground.p.value = 21
    assert "not an odd prime" in playground.state["error"]
    assert "not an odd prime" in playground.output.value


def test_image_explorer_follows_its_controls():
    images = np.stack([np.full((8, 8), 10, np.uint8), np.tile(np.arange(8, dtype=np.uint8) * 30, (8, 1))])
    explorer = ImageEncryptionExplorer(images, ["flat", "ramp"], key_sizes=(512,))
    assert explorer.state["regime"] is Regime.TABLE
    assert len(np.unique(explorer.state["cipher"])) == 1  # one value in, one symbol out
    explorer.image.value = 1
    assert np.array_equal(explorer.state["plain"], images[1])
    explorer.regime.value = Regime.RANDOMIZED
    assert len(np.unique(explorer.state["cipher"])) > 20
