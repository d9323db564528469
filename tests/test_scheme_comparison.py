"""Tests of ppdl_utils.analysis.scheme_comparison on tiny synthetic data: feature shapes, exact decryption,
(non-)determinism, expansion formulas, information left in the features, and a tiny end-to-end
comparison.  Keys: the session's 2048-bit Paillier key, a 2048-bit RSA key, LWE DEFAULT."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from ppdl_utils.analysis import scheme_comparison as sc
from ppdl_utils.crypto import lwe
from ppdl_utils.crypto import rsa_textbook as rsa
from ppdl_utils.data.synthetic import make_knee_xray_like, make_osteoporosis_tabular
from ppdl_utils.errors import PlaintextRangeError

DETERMINISTIC = [c for c in sc.DEFAULT_CONFIGS if c[1] not in ("randomized", "none")]
RANDOMIZED = [c for c in sc.DEFAULT_CONFIGS if c[1] == "randomized"]
EXPANSION_2048 = {"plain": 1, "paillier": 512, "rsa": 256, "lwe": 4100}


@pytest.fixture(scope="module")
def keys(key2048) -> sc.SchemeKeys:
    return sc.SchemeKeys(key2048, rsa.keygen(2048), lwe.keygen(lwe.DEFAULT))


def features(values, scheme, regime, keys, **kw) -> sc.EncryptedFeatures:
    return sc.encrypt_features(values, scheme, regime, keys, progress=False, **kw)


@pytest.mark.parametrize("scheme, regime", sc.DEFAULT_CONFIGS)
def test_features_have_the_input_shape_and_decrypt_exactly(keys, scheme, regime):
    values = np.random.default_rng(0).integers(0, 256, (5, 4, 6), dtype=np.uint8)
    enc = features(values, scheme, regime, keys, decrypt_items=5)
    assert enc.features.shape == values.shape and enc.features.dtype == np.float32
    assert 0.0 <= enc.features.min() and enc.features.max() <= 1.0
    assert enc.decrypt_exact
    assert enc.expansion == EXPANSION_2048[scheme]
    assert enc.encrypt_s_per_item >= 0 and enc.decrypt_s_per_item >= 0 and enc.peak_mem_mb >= 0


def test_expansion_formulas(keys):
    ct = lwe.encrypt(keys.lwe, np.arange(10))
    assert lwe.serialized_nbytes(ct) / ct.size == EXPANSION_2048["lwe"]
    assert keys.paillier.public.ciphertext_nbytes == 2 * 2048 // 8 == EXPANSION_2048["paillier"]
    assert rsa.ciphertext_nbytes(keys.rsa.public) == EXPANSION_2048["rsa"]


@pytest.mark.parametrize("scheme, regime", DETERMINISTIC)
def test_deterministic_regimes_give_equal_features_for_equal_inputs(keys, scheme, regime):
    row = np.random.default_rng(1).integers(0, 256, (1, 32), dtype=np.uint8)
    enc = features(np.tile(row, (3, 1)), scheme, regime, keys, decrypt_items=1)
    assert np.array_equal(enc.features[0], enc.features[1]) and np.array_equal(enc.features[0], enc.features[2])
    assert not enc.security.semantically_secure and "NOT secure" in enc.security.label


@pytest.mark.parametrize("scheme, regime", RANDOMIZED)
def test_randomized_regimes_give_different_features_for_equal_inputs(keys, scheme, regime):
    row = np.full((1, 64), 7, dtype=np.uint8)
    enc = features(np.tile(row, (2, 1)), scheme, regime, keys, decrypt_items=1)
    same = np.mean(enc.features[0] == enc.features[1])
    assert same < 0.2  # c mod 256 collides with probability ~1/256 per element, b/q ~2^-26
    assert enc.security.semantically_secure and "NOT secure" not in enc.security.label


def _separable_task(n: int = 240, elements: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Class 0: every element drawn from 0..63; class 1: from 192..255."""
    rng = np.random.default_rng(2)
    labels = np.arange(n) % 2
    values = rng.integers(0, 64, (n, elements)) + 192 * labels[:, None]
    return values.astype(np.uint8), labels


def _histogram_cv_accuracy(feats: np.ndarray, labels: np.ndarray) -> float:
    """5-fold accuracy of a logistic regression on each item's 256-bin histogram of feature values:
    it reads a substitution (equal values stay equal) but not a fresh random value."""
    bins = np.minimum((feats * 256).astype(int), 255)
    hist = np.stack([np.bincount(row, minlength=256) for row in bins]).astype(float)
    return float(cross_val_score(LogisticRegression(max_iter=2000), hist, labels, cv=5).mean())


@pytest.mark.parametrize("scheme, regime", [("plain", "none"), *DETERMINISTIC, *RANDOMIZED])
def test_only_deterministic_features_carry_the_class(keys, scheme, regime):
    values, labels = _separable_task()
    enc = features(values, scheme, regime, keys, decrypt_items=1)
    accuracy = _histogram_cv_accuracy(enc.features, labels)
    if regime == "randomized":
        assert accuracy < 0.7, f"{scheme} randomized features should be noise, got accuracy {accuracy}"
    else:
        assert accuracy > 0.9, f"{scheme} {regime} should keep the class, got accuracy {accuracy}"


def test_security_facts(keys):
    assert sc.security_info("paillier", "randomized", keys).security_bits == 112
    assert sc.security_info("rsa", "deterministic", keys).security_bits == 112
    lwe_info = sc.security_info("lwe", "randomized", keys)
    assert lwe_info.security_bits == lwe.DEFAULT.security_bits == 128 and lwe_info.post_quantum
    assert not sc.security_info("paillier", "randomized", keys).post_quantum
    assert not sc.security_info("rsa", "deterministic", keys).semantically_secure
    assert inspect.signature(sc.make_keys).parameters["lwe_params"].default is lwe.DEFAULT
    teaching = sc.SchemeKeys(keys.paillier, keys.rsa, lwe.keygen(lwe.TEACHING))
    info = sc.security_info("lwe", "randomized", teaching)
    assert info.security_bits == 0 and not info.post_quantum
    table = sc.schemes_table(keys)
    assert table.loc["paillier", "ciphertext_bytes_per_element"] == 512
    assert table.loc["lwe", "ciphertext_bytes_per_element"] == 4100


def test_bad_inputs_are_named(keys):
    with pytest.raises(ValueError, match="randomized.*impossible"):
        features(np.zeros((2, 2), np.uint8), "rsa", "randomized", keys)
    with pytest.raises(ValueError, match="does not support regime 'table'"):
        features(np.zeros((2, 2), np.uint8), "lwe", "table", keys)
    with pytest.raises(ValueError, match="unknown scheme"):
        features(np.zeros((2, 2), np.uint8), "elgamal", "randomized", keys)
    with pytest.raises(PlaintextRangeError, match="0..255"):
        features(np.full((2, 2), 300), "plain", "none", keys)


def test_run_comparison_tiny(keys, tmp_path):
    tabular = sc.prepare_tabular(make_osteoporosis_tabular(n_rows=90, seed=0), seed=0)
    images = sc.prepare_images(make_knee_xray_like(n_per_class=8, size=16, seed=0), seed=0)
    configs = [("plain", "none"), ("paillier", "randomized"), ("rsa", "deterministic"), ("lwe", "fixed_r")]
    table = sc.run_comparison([tabular, images], keys, configs=configs, epochs={"tabular": 2, "image": 1},
                              decrypt_items=1, progress=False)
    assert list(table.columns) == list(sc.COLUMNS)
    assert len(table) == 2 * len(configs)
    assert list(table["scheme"]) == [s for s, _ in configs] * 2
    assert table["accuracy"].between(0, 1).all() and table["macro_f1"].between(0, 1).all()
    assert table["decrypt_exact"].all()
    assert (table["expansion"] == table["scheme"].map(EXPANSION_2048)).all()
    encrypted = table[table["scheme"] != "plain"]
    assert (encrypted["semantically_secure"] == (encrypted["regime"] == "randomized")).all()
    assert encrypted.loc[~encrypted["semantically_secure"], "label"].str.contains("NOT secure").all()
    assert sc.markdown_table(table[["scheme", "accuracy"]]).count("\n") == len(table) + 2
    fig = sc.plot_accuracy_vs_cost(table)
    fig.savefig(tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_key_spread_draws_fresh_keys_for_the_deterministic_rows(keys):
    assert set(sc.DETERMINISTIC_CONFIGS) == set(DETERMINISTIC)
    tabular = sc.prepare_tabular(make_osteoporosis_tabular(n_rows=90, seed=0), seed=0)
    images = sc.prepare_images(make_knee_xray_like(n_per_class=8, size=16, seed=0), seed=0)
    configs = [("paillier", "table"), ("rsa", "deterministic")]
    spread = sc.key_spread([tabular, images], keys, 2, configs=configs, epochs=1, progress=False)
    assert len(spread) == 2 * 2 * len(configs)
    assert spread["key_draw"].tolist() == [0] * 4 + [1] * 4
    first, second = spread.groupby("key_draw")["paillier_key"].first()
    assert first == keys.paillier.public.fingerprint and second != first
    summary = sc.spread_summary(spread)
    assert len(summary) == 4 and (summary["keys"] == 2).all()
    assert ((summary["min"] <= summary["mean"]) & (summary["mean"] <= summary["max"])).all()
    for row in summary.itertuples():
        draws = spread[(spread["dataset"] == row.dataset) & (spread["scheme"] == row.scheme)]["accuracy"]
        assert row.mean == pytest.approx(draws.mean()) and row.max == draws.max()
    with pytest.raises(ValueError, match="n_keys"):
        sc.key_spread([tabular], keys, 0, configs=configs)
