"""The claim audit (ppdl_utils.analysis.audit), the literature ciphers it measures, and `ppdl audit`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ppdl_utils.analysis import audit
from ppdl_utils.cli import main
from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.data.synthetic import make_chest_xray_like
from ppdl_utils.errors import AuditError, DataError, ImageFormatError
from ppdl_utils.images import literature_ciphers as lit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return make_chest_xray_like(n_per_class=3, size=32, seed=0).images


@pytest.fixture
def seeded_secrets(monkeypatch):
    """Keys and nonces from a seeded generator: the game's outcome is then the same on every run."""
    rng = np.random.default_rng(7)
    monkeypatch.setattr(lit.secrets, "token_bytes", lambda n: rng.bytes(n))


# --------------------------------------------------------------------------- literature ciphers


def _stacks(sides=(4, 8, 12)):
    return st.tuples(st.integers(1, 3), st.sampled_from(sides), st.integers(0, 2**32 - 1)).map(
        lambda t: np.random.default_rng(t[2]).integers(0, 256, (t[0], t[1], t[1]), dtype=np.uint8))


@settings(max_examples=25, deadline=None)
@given(_stacks())
def test_every_literature_cipher_decrypts_back_exactly(stack):
    logistic, aes, perm = lit.logistic_keygen(), lit.aes_keygen(), lit.permutation_keygen()
    assert np.array_equal(lit.logistic_decrypt(lit.logistic_encrypt(stack, logistic), logistic), stack)
    assert np.array_equal(lit.aes_ecb_decrypt(lit.aes_ecb_encrypt(stack, aes), aes), stack)
    for reuse in (False, True):
        cipher, nonces = lit.aes_ctr_encrypt(stack, aes, reuse_nonce=reuse)
        assert np.array_equal(lit.aes_ctr_decrypt(cipher, aes, nonces), stack)
    assert np.array_equal(lit.permutation_decrypt(lit.permutation_encrypt(stack, perm), perm), stack)


@settings(max_examples=15, deadline=None)
@given(_stacks(sides=(4, 8)))
def test_the_literature_ciphers_keep_shape_and_dtype_and_change_the_image(stack):
    key = lit.aes_keygen()
    for out in (lit.logistic_encrypt(stack, lit.logistic_keygen()), lit.aes_ecb_encrypt(stack, key),
                lit.aes_ctr_encrypt(stack, key)[0]):
        assert out.shape == stack.shape and out.dtype == np.uint8
        assert not np.array_equal(out, stack)


def test_equal_images_give_equal_ciphertexts_except_under_fresh_nonces(images):
    twice = np.stack([images[0], images[0]])
    aes = lit.aes_keygen()
    fresh = lit.aes_ctr_encrypt(twice, aes)[0]
    assert not np.array_equal(fresh[0], fresh[1])
    for out in (lit.aes_ctr_encrypt(twice, aes, reuse_nonce=True)[0], lit.aes_ecb_encrypt(twice, aes),
                lit.logistic_encrypt(twice, lit.logistic_keygen()),
                lit.permutation_encrypt(twice, lit.permutation_keygen())):
        assert np.array_equal(out[0], out[1])


def test_a_reused_nonce_is_a_two_time_pad_and_ecb_keeps_equal_blocks(images):
    aes = lit.aes_keygen()
    c = lit.aes_ctr_encrypt(images[:2], aes, reuse_nonce=True)[0]
    assert np.array_equal(c[0] ^ c[1], images[0] ^ images[1])
    flat = np.zeros((1, 4, 8), dtype=np.uint8)  # two equal 16-pixel blocks
    blocks = lit.aes_ecb_encrypt(flat, aes).reshape(2, 16)
    assert np.array_equal(blocks[0], blocks[1])


def test_the_chaotic_cipher_has_the_statistics_papers_quote(images):
    """One changed pixel changes almost every cipher pixel: the NPCR/UACI that papers call ideal."""
    from ppdl_utils.analysis.cipher_stats import one_pixel_change
    from ppdl_utils.images.metrics import npcr_uaci

    key = lit.logistic_keygen()
    a = lit.logistic_encrypt(images, key)
    b = lit.logistic_encrypt(np.stack([one_pixel_change(img, i) for i, img in enumerate(images)]), key)
    npcr, uaci = np.mean([npcr_uaci(x, y) for x, y in zip(a, b)], axis=0)
    assert npcr > 98.0 and 30.0 < uaci < 37.0


def test_ecb_refuses_images_that_are_not_whole_blocks():
    with pytest.raises(ImageFormatError, match="multiple of 16"):
        lit.aes_ecb_encrypt(np.zeros((1, 5, 5), dtype=np.uint8), lit.aes_keygen())


# --------------------------------------------------------------------------- checked calls


def _cipher(fn, name="bad"):
    return audit.cipher_from_callable(fn, name=name)


@pytest.mark.parametrize("fn, message", [
    (lambda x, k: x[:, :-1], "changed the shape"),
    (lambda x, k: x.astype(np.float32) / 255, "changed the dtype"),
    (lambda x, k: list(x), "returned list"),
    (lambda x, k: 1 / 0, "raised ZeroDivisionError"),
])
def test_a_bad_callable_is_refused_by_name(images, fn, message):
    with pytest.raises(AuditError, match=message) as info:
        audit.check_encryption(_cipher(fn, "my_cipher"), images, None)
    assert "my_cipher" in str(info.value)


def test_a_callable_with_shapes_that_change_between_calls_is_refused(images):
    calls = []

    def drifting(x, key):
        calls.append(1)
        return np.zeros_like(x) if len(calls) == 1 else np.zeros((len(x), 5, 5), dtype=np.uint8)

    with pytest.raises(AuditError, match="changed the shape|non-deterministic shapes"):
        audit.check_encryption(_cipher(drifting), images, None)


def test_load_callable_names_what_is_wrong():
    with pytest.raises(AuditError, match="module:function"):
        audit.load_callable("no_colon")
    with pytest.raises(AuditError, match="cannot import"):
        audit.load_callable("no_such_module_xyz:f")
    with pytest.raises(AuditError, match="no callable 'nothing'"):
        audit.load_callable("numpy:nothing")
    assert audit.load_callable("numpy:flip") is np.flip


def test_an_unknown_scheme_lists_the_known_ones():
    with pytest.raises(AuditError, match="aes-ecb"):
        audit.make_cipher("rot13")


# --------------------------------------------------------------------------- measurements


def test_wilson_interval_brackets_the_proportion():
    assert audit.wilson_interval(0, 40)[0] == 0.0
    assert audit.wilson_interval(40, 40)[1] == 1.0
    low, high = audit.wilson_interval(30, 40)
    assert low < 0.75 < high


def test_determinism_and_equal_pixels(images):
    key = generate_keypair(1024, allow_insecure=True)  # a test key, labelled insecure
    r_one = audit.make_cipher("r_one", paillier_key=key)
    found = audit.determinism(r_one, r_one.keygen(), images[:3])
    # c mod 256 of r_one is a bijection of the gray levels: deterministic, equal pixels stay equal, bars kept
    assert found == {"deterministic": True, "equal_pixel_leak": 1.0, "histogram_kept": 1.0}
    ctr = audit.make_cipher("aes-ctr")
    fresh = audit.determinism(ctr, ctr.keygen(), images[:3])
    assert fresh["deterministic"] is False and abs(fresh["equal_pixel_leak"]) < 0.05 and fresh["histogram_kept"] == 0
    ecb = audit.make_cipher("aes-ecb")
    assert audit.determinism(ecb, ecb.keygen(), images[:3])["deterministic"] is True


def test_the_game_puts_fresh_nonces_at_zero_and_deterministic_schemes_at_one(images, seeded_secrets):
    m0, m1 = images[0][:8, :8], images[-1][12:20, 12:20]
    for name in ("aes-ecb", "aes-ctr-reused-nonce", "pixel-permutation"):
        cipher = audit.make_cipher(name)
        game = audit.distinguishing_game(cipher, cipher.keygen(), m0, m1, n_oracle=12, n_challenges=40)
        assert game["advantage"] == 1.0 and game["advantage_low"] > 0.8, name
    ctr = audit.make_cipher("aes-ctr")
    game = audit.distinguishing_game(ctr, ctr.keygen(), m0, m1, n_oracle=12, n_challenges=40)
    assert game["advantage_low"] < 0 < game["advantage_high"]
    assert game["challenges_seen_by_oracle"] == 0


def test_the_game_needs_two_different_images(images):
    with pytest.raises(AuditError, match="two different images"):
        audit.distinguishing_game(audit.make_cipher("aes-ctr"), lit.aes_keygen(), images[0], images[0], 2, 2)


def test_the_keystream_attack_recovers_a_reused_nonce_exactly(images):
    cipher = audit.make_cipher("aes-ctr-reused-nonce")
    runs = audit.attack_recovery(cipher, cipher.keygen(), images[:4], images[4:7])
    xor = next(r for r in runs if r.attack == "known pair (keystream xor)")
    assert np.array_equal(xor.images, images[4:7]) and xor.ssim == [1.0, 1.0, 1.0]
    assert runs[0].attack == "mean training image"  # the prior comes first


def _row(**changes) -> dict:
    row = {"deterministic": False, "advantage": 0.0, "advantage_low": -0.1, "advantage_high": 0.1,
           "learnable": False, "equal_pixel_leak": 0.0, "recovered": False, "stats_look_ideal": True, "oracle": True}
    return {**row, **changes}


def test_the_verdict_follows_the_leaks_never_the_statistics():
    assert audit.verdict(_row()).startswith("no leak found: classifier at chance")
    assert "learnability not measured" in audit.verdict(_row(learnable=None))
    assert audit.verdict(_row(stats_look_ideal=False)).startswith("no leak found")
    assert audit.verdict(_row(deterministic=True)).startswith("LEAKS: deterministic")
    learnable = _row(learnable=True, accuracy=0.9, accuracy_low=0.8, accuracy_high=0.95, chance=0.25)
    assert "CNN learns" in audit.verdict(learnable)
    assert "advantage 0.40" in audit.verdict(_row(advantage=0.4, advantage_low=0.2, advantage_high=0.6))


def test_learnability_trains_on_a_subset_when_encryption_is_slow():
    data = make_chest_xray_like(n_per_class=14, size=16, seed=1)
    timed = audit.AuditSettings.for_run(True, learn_budget_s=1.0)
    found = audit.learnability(audit.make_cipher("plain"), None, data, timed, seconds_per_image=100.0)
    assert found["n_learn"] == 4 * 10  # min_learn_per_class x classes
    assert found["n_test"] >= 4
    slow = audit.make_cipher("randomized", paillier_key=generate_keypair(1024, allow_insecure=True))
    assert slow.slow and audit.AuditSettings().slow_learn_per_class == 25
    assert 0.0 <= found["accuracy_low"] <= found["accuracy"] <= found["accuracy_high"] <= 1.0


def test_a_quick_audit_of_a_reused_nonce(images):
    data = make_chest_xray_like(n_per_class=4, size=32, seed=2)
    result = audit.audit(audit.make_cipher("aes-ctr-reused-nonce"), data, audit.AuditSettings.for_run(True),
                         learn=False)
    row = result.row
    assert row["verdict"].startswith("LEAKS") and row["deterministic"] and row["recovered"]
    assert row["attack_ssim"] == 1.0 and row["learnable"] is None
    table = audit.audit_table([result])
    separation = audit.separation_table(table)
    assert separation.loc[separation["measurement"].str.startswith("deterministic"),
                          "calls broken: broken schemes"].item() == "1/1"


# --------------------------------------------------------------------------- folders of pairs


def _write(folder: Path, name: str, image: np.ndarray) -> None:
    folder.joinpath(name).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / name)


@pytest.fixture
def pair_folders(tmp_path, images):
    """A table-regime-like substitution, stored as files: two class folders."""
    table = np.random.default_rng(3).permutation(256).astype(np.uint8)
    plain, enc = tmp_path / "plain", tmp_path / "enc"
    for i, image in enumerate(images[:8]):
        name = f"{'A' if i % 2 else 'B'}/img{i}.png"
        _write(plain, name, image)
        _write(enc, name, table[image])
    return plain, enc


def test_folder_pairs_load_with_labels_and_audit_without_an_oracle(pair_folders, images):
    pairs = audit.load_folder_pairs(*pair_folders)
    assert pairs.plain.shape == (8, 32, 32) and pairs.class_names == ["A", "B"]
    table = np.random.default_rng(3).permutation(256).astype(np.uint8)
    assert np.array_equal(pairs.encrypted[0], table[pairs.plain[0]])
    cipher = audit.folder_cipher(pairs)
    result = audit.audit(cipher, pairs.dataset("plain"), audit.AuditSettings.for_run(True), learn=False)
    row = result.row
    assert row["deterministic"] is None and "advantage" not in row  # no oracle: not measured
    assert row["equal_pixel_leak"] == 1.0 and row["verdict"].startswith("LEAKS")
    with pytest.raises(AuditError, match="no stored ciphertext"):
        cipher.encrypt(np.zeros((1, 32, 32), dtype=np.uint8), None)


def test_folders_that_do_not_pair_up_are_named(pair_folders, images):
    plain, enc = pair_folders
    (enc / "A" / "img1.png").unlink()
    _write(enc, "B/stray.png", images[0])
    with pytest.raises(DataError, match=r"1 plain image\(s\) have no encrypted counterpart .*A/img1.*"
                                        r"1 encrypted image\(s\) have no plain original .*B/stray"):
        audit.load_folder_pairs(plain, enc)


def test_a_pair_of_two_sizes_is_named(pair_folders, images):
    plain, enc = pair_folders
    _write(enc, "A/img1.png", images[1][:16, :16])
    with pytest.raises(DataError, match="pair 'A/img1'.*32x32 px.*16x16 px"):
        audit.load_folder_pairs(plain, enc)


def test_an_empty_or_missing_folder_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        audit.load_folder_pairs(tmp_path / "empty", tmp_path / "empty")
    with pytest.raises(DataError, match="is not a folder"):
        audit.load_folder_pairs(tmp_path / "missing", tmp_path / "empty")


# --------------------------------------------------------------------------- the command line


def test_the_console_script_points_at_the_cli():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["ppdl"].partition(":")
    assert (module, function) == ("ppdl_utils.cli", "main")
    assert audit.load_callable(scripts["ppdl"]) is main


def test_ppdl_audit_help_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "ppdl_utils.cli", "audit", "--help"], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    for option in ("--scheme", "--encrypt", "--keygen", "--plain-dir", "--encrypted-dir", "--quick", "--csv"):
        assert option in done.stdout
    assert "a CNN can learn from is one that leaks" in done.stdout.replace("\n", " ")


def test_ppdl_audit_writes_its_table(tmp_path, capsys):
    out = tmp_path / "audit.csv"
    assert main(["audit", "--scheme", "aes-ecb", "--quick", "--no-learn", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "== aes-ecb" in printed and "verdict" in printed and "LEAKS: deterministic" in printed
    table = pd.read_csv(out)
    assert table.loc[0, "scheme"] == "aes-ecb" and bool(table.loc[0, "deterministic"])


def mirror(images: np.ndarray, key: bytes) -> np.ndarray:
    """A user's "cipher" for the command line test: left-right mirror (the key is ignored)."""
    return images[:, :, ::-1].copy()


def test_ppdl_audit_of_a_user_callable_and_of_folders(tmp_path, capsys, pair_folders):
    assert main(["audit", "--encrypt", f"{__name__}:mirror", "--quick", "--no-learn"]) == 0
    printed = capsys.readouterr().out
    assert f"== {__name__}:mirror" in printed and "LEAKS: deterministic" in printed
    plain, enc = pair_folders
    assert main(["audit", "--plain-dir", str(plain), "--encrypted-dir", str(enc), "--quick", "--no-learn"]) == 0
    assert "n/a (no encryption oracle)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["audit", "--quick"], "exactly one of --scheme, --encrypt"),
    (["audit", "--scheme", "aes-ecb", "--encrypt", "numpy:flip"], "exactly one of"),
    (["audit", "--keygen", "numpy:flip", "--scheme", "aes-ecb"], "--keygen goes with --encrypt"),
    (["audit", "--plain-dir", "x"], "go together"),
    (["audit", "--encrypt", "numpy:nothing", "--quick"], "no callable 'nothing'"),
    (["audit", "--scheme", "rot13", "--quick"], "unknown scheme 'rot13'"),
])
def test_ppdl_audit_errors_are_one_named_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ppdl audit: error:") and message in err
