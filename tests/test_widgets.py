"""The teaching widgets recompute when driven from Python, as a student's clicks would."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppdl_utils.analysis.cipher_stats import r_one_rendering
from ppdl_utils.crypto.paillier import PaillierPublicKey
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import WrongKeyError
from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.teaching.widgets import ImageEncryptionExplorer, PaillierPlayground, abbreviate


def visible(widget) -> bool:
    return widget.layout.display != "none"


def test_playground_shows_the_additive_homomorphism():
    playground = PaillierPlayground(p=17, q=19, m1=42, m2=57)
    assert playground.state["n"] == 323
    assert playground.state["decrypted_sum"] == playground.state["expected_sum"] == 99
    playground.m2.value = 100
    assert playground.state["decrypted_sum"] == 142
    assert "<tr class='ppdl-decrypted-sum'>" in playground.output.value
    assert "142" in playground.output.value


def test_randomization_toggle_changes_equality_of_ciphertexts_and_says_r_is_one():
    playground = PaillierPlayground(p=1009, q=1013)
    assert playground.randomized.description == "fresh random r for every encryption"
    assert not playground.randomized.indent and playground.randomized.layout.width == "auto"
    assert playground.state["c1"] != playground.state["c1_again"]
    assert not visible(playground.warning)
    playground.randomized.value = False
    assert playground.state["c1"] == playground.state["c1_again"] == 1 + 42 * 1009 * 1013
    assert playground.state["r"] == 1
    assert "SAME ciphertext" in playground.output.value
    assert visible(playground.warning) and "r = 1" in playground.warning.value
    assert "r_one" in playground.warning.value
    playground.randomized.value = True
    assert not visible(playground.warning)


def test_bit_size_mode_hides_the_stale_primes_and_bad_primes_are_named():
    playground = PaillierPlayground()
    assert visible(playground.primes) and not visible(playground.bits)
    playground.mode.value = "bit size"
    playground.bits.value = 128
    assert not visible(playground.primes) and visible(playground.bits)
    assert playground.state["n"].bit_length() == 128
    assert "hidden" in playground.output.value  # no lambda/mu shown beyond toy sizes
    playground.mode.value = "small primes"
    assert visible(playground.primes) and not visible(playground.bits)
    playground.p.value = 21
    assert "not an odd prime" in playground.state["error"]
    assert "not an odd prime" in playground.output.value


def test_a_2048_bit_key_is_abbreviated_until_asked_and_its_secrets_never_shown():
    playground = PaillierPlayground()
    assert not visible(playground.full_digits)  # nothing to expand for toy keys
    playground.mode.value = "bit size"
    playground.bits.value = 2048
    key, n = playground._key, playground.state["n"]
    digits = str(n)
    shown = playground.output.value
    assert digits not in shown and f"{digits[:12]}…{digits[-12:]} ({len(digits)} digits, 2048 bits)" in shown
    assert visible(playground.full_digits) and playground.state["abbreviated"]
    assert len(shown) < 3000  # not a wall of digits
    playground.full_digits.value = True
    assert digits in playground.output.value and str(playground.state["product"]) in playground.output.value
    for secret in (key.p, key.q, key.lam, key.mu):
        assert str(secret) not in playground.output.value


@given(st.integers(min_value=-(10**700), max_value=10**700), st.integers(min_value=1, max_value=30))
def test_abbreviate_keeps_both_ends_and_says_how_long(value, keep):
    text = str(value)
    short = abbreviate(value, keep=keep)
    assert abbreviate(value, full=True, keep=keep) == text
    if short != text:
        assert len(text) > 2 * keep + 6
        digits = len(str(abs(value)))
        assert short == f"{text[:keep]}…{text[-keep:]} ({digits} digits, {abs(value).bit_length()} bits)"
    else:
        assert len(text) <= 2 * keep + 6


def test_image_explorer_follows_its_controls():
    images = np.stack([np.full((8, 8), 10, np.uint8), np.tile(np.arange(8, dtype=np.uint8) * 30, (8, 1))])
    explorer = ImageEncryptionExplorer(images, ["flat", "ramp"], key_sizes=(512,), source="SYNTHETIC data")
    assert explorer.state["regime"] is Regime.TABLE
    assert explorer.regime.style.description_width == "initial"  # the labels are not cut
    assert len(np.unique(explorer.state["cipher"])) == 1  # one value in, one symbol out
    explorer.image.value = 1
    assert np.array_equal(explorer.state["plain"], images[1])
    explorer.regime.value = Regime.RANDOMIZED
    assert len(np.unique(explorer.state["cipher"])) > 20
    assert explorer.note.value == ""
    explorer.regime.value = Regime.R_ONE
    n = explorer._keys[512].public.n
    assert f"n mod 256 = {n % 256}" in explorer.note.value


def test_explorer_figure_has_labelled_histogram_and_source_caption():
    images = np.stack([np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))])
    explorer = ImageEncryptionExplorer(images, ["ramp"], key_sizes=(512,), source="SYNTHETIC data (test)")
    fig = explorer._figure(explorer.state["plain"], explorer.state["cipher"])
    hist = fig.axes[2]
    assert hist.get_xlabel() == "pixel value" and hist.get_ylabel() and hist.get_title()
    assert any(t.get_text() == "SYNTHETIC data (test)" for t in fig.texts)


@given(st.integers(min_value=1, max_value=2**64).map(lambda k: 2 * k + 1))
def test_r_one_rendering_is_an_affine_bijection_anyone_undoes(n):
    view = r_one_rendering(PaillierPublicKey(n))
    m = np.arange(256)
    rendered = (1 + (n % 256) * m) % 256  # c mod 256 with c = 1 + n*m, for every gray level
    assert np.array_equal(view.decode(rendered), m)
    assert view.n_mod_256 == n % 256 and (view.step - n) % 256 == 0 and -128 < view.step <= 128
    assert f"n mod 256 = {n % 256}" in view.sentence()


def test_r_one_rendering_matches_the_real_encryption(other_key):
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8), dtype=np.uint8)
    rendered = ImageEncryptor(other_key, Regime.R_ONE).encrypt_rendered(images, "mod256", progress=False)
    assert np.array_equal(r_one_rendering(other_key.public).decode(rendered), images)


@pytest.mark.parametrize("n_mod_256, looks", [(1, "the X-ray itself"), (255, "negative"), (3, "3 contour bands"),
                                              (249, "7"), (129, "alternating stripes"), (101, "noise")])
def test_r_one_rendering_says_what_the_eye_sees(n_mod_256, looks):
    view = r_one_rendering(PaillierPublicKey(256 * 1000 + n_mod_256))
    assert looks in view.looks or (looks == "7" and abs(view.step) == 7 and "outline" in view.looks)


def test_r_one_rendering_rejects_an_even_modulus():
    with pytest.raises(WrongKeyError, match="n mod 256 = 10 is even"):
        r_one_rendering(PaillierPublicKey(256 * 7 + 10))


def test_executed_copies_keep_the_widget_state(tmp_path):
    """papermill (nbclient) saves the widget state with an executed notebook, which is what lets a
    reopened copy in build/notebooks/ show the widget as a snapshot instead of its text repr."""
    import nbformat
    import papermill

    source, executed = tmp_path / "widget.ipynb", tmp_path / "executed.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from ppdl_utils.teaching.widgets import PaillierPlayground\nPaillierPlayground().widget")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, source)
    papermill.execute_notebook(str(source), str(executed), kernel_name="python3", progress_bar=False)
    out = nbformat.read(executed, as_version=4)
    view = out.cells[-1].outputs[-1]["data"]["application/vnd.jupyter.widget-view+json"]
    state = out.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert view["model_id"] in state and state[view["model_id"]]["model_name"] == "VBoxModel"
