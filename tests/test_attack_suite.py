"""Tests of ppdl_utils.attacks.suite on tiny synthetic chest X-rays (32 px) with a 512-bit Paillier key.

Each targeted attack recovers its regime exactly (PSNR inf) or above a stated quality, every
attack fails on the randomized regime, and the leakage table never invents CNN accuracies.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from ppdl_utils.attacks import suite
from ppdl_utils.crypto import lwe, rsa_textbook
from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.data.synthetic import make_chest_xray_like


@pytest.fixture(scope="module")
def data():
    images = make_chest_xray_like(n_per_class=3, size=32, seed=1).images  # 12 images
    train, test = suite.split_train_test(images, n_test=4, n_train=6, seed=0)
    return train, test, suite.attacker_knowledge(train)


@pytest.fixture(scope="module")
def key():
    return generate_keypair(512, allow_insecure=True)


@pytest.fixture(scope="module")
def paillier_runs(key, data):
    _, test, knowledge = data
    return {regime: suite.paillier_attacks(key, regime, test, knowledge) for regime in Regime}


def pick(runs, input_, attack):
    found = [r for r in runs if r.input == input_ and r.attack.startswith(attack)]
    assert len(found) == 1, [r.label for r in runs]
    return found[0]


def all_exact(run):
    return all(math.isinf(p) for p in run.psnr) and all(run.success)


# ----------------------------------------------------------------------------- knowledge


def test_split_is_disjoint_and_knowledge_comes_from_training_images(data):
    train, test, knowledge = data
    assert len(train) == 6 and len(test) == 4
    assert not any((t == x).all() for t in test for x in train)
    hist = np.bincount(train.ravel(), minlength=256) / train.size
    assert np.allclose(knowledge.reference_histogram, hist)
    assert knowledge.darkest_level == int(np.median(train.reshape(6, -1).min(axis=1)))
    assert (knowledge.pair_plain == train[0]).all()


def test_split_rejects_too_few_images(data):
    with pytest.raises(ValueError):
        suite.split_train_test(data[0], n_test=5, n_train=5)


# ----------------------------------------------------------------------------- targeted attacks


def test_r_one_falls_to_the_public_key_alone(paillier_runs):
    runs = paillier_runs[Regime.R_ONE]
    assert all_exact(pick(runs, "full ciphertexts", "r_one algebra"))
    # c mod 256 = 1 + n m (mod 256): the rendering the CNN sees is inverted exactly too
    assert all_exact(pick(runs, "c mod 256", "r_one algebra"))


def test_fixed_r_falls_to_one_pixel(paillier_runs, data):
    _, test, knowledge = data
    run = pick(paillier_runs[Regime.FIXED_R], "full ciphertexts", "fixed_r algebra")
    # the darkest pixel is pinned at the training images' typical darkest level: exact up to that shift
    expected = np.clip(test.astype(int) - test.reshape(len(test), -1).min(axis=1)[:, None, None]
                       + knowledge.darkest_level, 0, 255)
    assert (run.images == expected).all()
    assert min(run.ssim) > 0.99


def test_fixed_r_with_one_known_pixel_is_exact(key, data):
    _, test, knowledge = data
    runs = suite.paillier_attacks(key, Regime.FIXED_R, test, knowledge, known_pixel="oracle")
    assert all_exact(pick(runs, "full ciphertexts", "fixed_r algebra"))


def test_table_falls_to_one_known_pair_and_to_ciphertexts_alone(paillier_runs):
    runs = paillier_runs[Regime.TABLE]
    pair = pick(runs, "full ciphertexts", "known pair")
    assert all(pair.success) and np.median(pair.coverage) > 0.8
    assert np.median(pair.psnr) > 25 and min(pair.ssim) > 0.9
    co = pick(runs, "full ciphertexts", "ciphertext only")
    assert all(co.success)
    # structure is recovered in one of the two contrast orientations
    assert max(np.median(co.ssim), co.extra["ssim_reversed_median"]) > 0.7


def test_rendered_deterministic_images_fall_to_one_known_pair(paillier_runs):
    """What the CNN is fed.  r_one mod 256 is a bijection; table and fixed_r renderings have
    c mod 256 collisions that depend on the key (fixed_r's are structured and can be severe), so
    only the table rendering gets a quality bound (observed >= 0.74 median SSIM over many keys)."""
    r_one = pick(paillier_runs[Regime.R_ONE], "c mod 256", "known pair")
    assert all(r_one.success) and np.median(r_one.ssim) > 0.9 and all(r_one.beats_prior)
    table = pick(paillier_runs[Regime.TABLE], "c mod 256", "known pair")
    assert all(table.success) and np.median(table.ssim) > 0.6
    # smoothness decoding helps where the lookup alone leaves merged levels to resolve; when this key's
    # table merges almost none in these images (lookup-only ~1.0), it may cost a little (seen: 0.989)
    lookup_only = table.extra["ssim_lookup_only_median"]
    assert np.median(table.ssim) >= min(lookup_only, 0.97)
    assert all(pick(paillier_runs[Regime.FIXED_R], "c mod 256", "known pair").success)


def test_textbook_rsa_falls_to_a_dictionary(data):
    _, test, knowledge = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 1024-bit key: fast, tests only
        rsa_key = rsa_textbook.keygen(1024)
    runs = suite.rsa_attacks(rsa_key, test, knowledge)
    assert all_exact(pick(runs, "full ciphertexts", "dictionary"))


def test_lwe_with_reused_randomness_falls_to_one_pixel_and_fresh_randomness_does_not(data):
    _, test, knowledge = data
    key = lwe.keygen(lwe.DEFAULT)
    fixed = suite.lwe_attacks(key, Regime.FIXED_R, test, knowledge, known_pixel="oracle")
    assert all_exact(pick(fixed, "b values", "reused"))
    fresh = suite.lwe_attacks(key, Regime.RANDOMIZED, test, knowledge, known_pixel="oracle")
    for run in fresh:
        assert not any(run.success) and not any(run.beats_prior), run.label
        assert max(run.ssim) < 0.2, run.label


# ----------------------------------------------------------------------------- randomized


def test_every_attack_fails_on_randomized_paillier(paillier_runs):
    runs = paillier_runs[Regime.RANDOMIZED]
    assert len(runs) == 7  # the same seven attacks as on the deterministic regimes
    for run in runs:
        assert not any(run.success), run.label
        assert not any(run.beats_prior), run.label
        assert max(run.ssim) < 0.2 and not any(math.isinf(p) for p in run.psnr), run.label


def test_prior_baseline_is_what_randomized_attacks_are_compared_with(data):
    _, test, knowledge = data
    prior = suite.prior_run(test, knowledge)
    assert prior.regime is None and not any(prior.beats_prior)
    assert prior.images.shape == test.shape


# ----------------------------------------------------------------------------- tables


def test_results_table_and_matrix(paillier_runs, data, tmp_path):
    _, test, knowledge = data
    runs = [suite.prior_run(test, knowledge)] + [r for rs in paillier_runs.values() for r in rs]
    df = suite.results_table(runs)
    assert len(df) == 1 + 4 * 7
    for col in ("success_rate", "psnr_mean", "psnr_median", "ssim_mean", "ssim_median", "s_per_image",
                "attacker_uses", "coverage_mean", "beats_prior_rate"):
        assert col in df.columns
    assert df["regime"].str.contains("deterministic, NOT secure").sum() == 3 * 7
    r1 = df[(df.regime.str.startswith("r_one")) & (df.attack == "r_one algebra")].iloc[0]
    assert math.isinf(r1.psnr_mean) and r1.success_rate == 1.0
    assert list(suite.results_table(runs, brief=True).columns) == suite.BRIEF_COLUMNS
    df.to_csv(tmp_path / "06.csv", index=False)
    matrix = suite.ssim_matrix(runs)
    assert "known pair + smoothness" in matrix.columns


def test_leakage_table_says_not_run_without_cnn_results(paillier_runs, tmp_path):
    runs = [r for rs in paillier_runs.values() for r in rs]
    table = suite.leakage_vs_accuracy_table(runs, {})
    assert (table["cnn_test_accuracy"] == "not run").all()
    inv = dict(zip(table["regime"], table["invertible"]))
    assert inv[Regime.RANDOMIZED.label] == "no"
    for regime in (Regime.R_ONE, Regime.FIXED_R, Regime.TABLE):
        assert inv[regime.label] == "yes"
    table = suite.leakage_vs_accuracy_table(runs, {"table": 0.93}, cnn_run="synthetic")
    acc_by = dict(zip(table["regime"], table["cnn_test_accuracy"]))
    assert acc_by[Regime.TABLE.label] == "0.930" and acc_by[Regime.RANDOMIZED.label] == "not run"
    assert dict(zip(table["regime"], table["cnn_run"]))[Regime.TABLE.label] == "synthetic"


def test_recovered_grid(paillier_runs, data):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, test, knowledge = data
    runs = [suite.prior_run(test, knowledge)] + [r for rs in paillier_runs.values() for r in rs]
    chosen = suite.select_runs(runs)
    assert chosen[0].scheme.startswith("none") and len(chosen) >= 8
    fig = suite.recovered_grid(chosen, test, n_columns=2)
    assert len(fig.axes) == 2 * (len(chosen) + 1)
    plt.close(fig)
