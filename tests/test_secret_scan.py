"""The secret registry records every secret a run draws, and the scanner finds each of them in
every form a careless notebook could print: decimal, hex, wrapped, truncated, inside JSON, CSV and
PNG text chunks.  Each planted form must make the scan fail (a scan that cannot fail proves nothing)."""
from __future__ import annotations

import json
import os
import stat

import nbformat
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from ppdl_utils import secret_scan
from ppdl_utils.crypto import keyfiles, lwe, rsa_textbook
from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.secret_scan import (
    WINDOW,
    SecretLeakError,
    SecretRegistry,
    SecretRegistryError,
    assert_no_secrets,
    load_secrets,
    scan_paths,
    scan_text,
)


@pytest.fixture(autouse=True)
def no_global_registry(monkeypatch):
    """Each test starts and ends without an active registry (activation is process-global)."""
    monkeypatch.delenv(secret_scan.ENV_VAR, raising=False)
    secret_scan.deactivate()
    yield
    secret_scan.deactivate()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A keys folder as a notebook run leaves it: Paillier key file, then RSA, LWE, table, fixed r."""
    keys = tmp_path_factory.mktemp("run") / "keys"
    secret_scan.deactivate()
    key = keyfiles.load_or_create_private_key(keys, 1024, allow_insecure=True)  # activates keys/secret_registry.jsonl
    rsa_key = rsa_textbook.keygen(2048)
    lwe_key = lwe.keygen(lwe.DEFAULT)
    table = ImageEncryptor(key, Regime.TABLE)
    ImageEncryptor(key, Regime.FIXED_R)
    r = next(s for s in secret_scan.active_registry().secrets() if s.kind == "fixed_r").values[0]
    secret_scan.deactivate()
    secrets = load_secrets(keys)
    return {"keys": keys, "paillier": key, "rsa": rsa_key, "lwe": lwe_key, "table": table.table, "r": r,
            "secrets": secrets, "index": secret_scan.SecretIndex(secrets)}


def _found(text, run) -> bool:
    return bool(scan_text(text, run["index"]))


def test_every_kind_of_secret_is_registered_with_0600_permissions(run):
    registry = run["keys"] / secret_scan.REGISTRY_NAME
    assert stat.S_IMODE(os.stat(registry).st_mode) == 0o600
    kinds = {(s.kind, s.name) for s in run["secrets"]}
    assert {("paillier", "p"), ("paillier", "q"), ("paillier", "lambda"), ("paillier", "mu"),
            ("rsa", "d"), ("rsa", "p"), ("rsa", "q"), ("lwe", "s"), ("table", "E(0..255)"),
            ("fixed_r", "r")} <= kinds
    assert all(str(run["paillier"].p) not in repr(s) for s in run["secrets"])  # reprs hide values


def test_a_clean_report_passes(run):
    key = run["paillier"]
    text = json.dumps({"n": str(key.n), "fingerprint": key.public.fingerprint, "accuracy": 0.931,
                       "numbers": list(range(500)), "zeros": [0] * 300})
    assert scan_text(text, run["secrets"]) == []


@pytest.mark.parametrize("form", ["decimal", "hex", "HEX with 0x", "wrapped", "json-wrapped", "window",
                                  "hex window", "thousands"])
def test_paillier_secrets_are_found_in_every_form(run, form):
    p = run["paillier"].p
    digits = str(p)
    planted = {"decimal": f"p = {digits}", "hex": format(p, "x"), "HEX with 0x": hex(p).upper(),
               "wrapped": "\n".join(digits[i:i + 50] for i in range(0, len(digits), 50)),
               "json-wrapped": json.dumps([digits[:100] + "\n", digits[100:]]),
               "window": "..." + digits[100:100 + WINDOW] + "...",
               "hex window": format(p, "x")[30:30 + WINDOW],
               "thousands": f"{p:,}"}[form]
    findings = scan_text("report\n" + planted + "\nend", run["index"])
    assert findings and findings[0].secret.split(" (")[0] in ("paillier p", "key file p")
    assert digits not in str(findings) and digits[:WINDOW] not in str(findings)


def test_a_window_one_digit_too_short_is_not_a_finding(run):
    digits = str(run["paillier"].q)
    assert not _found("x" + digits[7:7 + WINDOW - 1] + "x", run)
    assert _found("x" + digits[7:7 + WINDOW] + "x", run)


def test_rsa_d_lwe_s_table_and_fixed_r_are_found(run):
    assert _found(f"d={run['rsa'].d}", run)
    assert _found(format(run["rsa"].d, "x")[-40:], run)
    s = run["lwe"].s
    assert _found(str(s.tolist()), run)
    assert _found(np.array2string(s[100:160], max_line_width=30), run)  # wrapped numpy repr
    assert not _found(np.array2string(s[100:100 + secret_scan.SEQUENCE_WINDOW - 20]), run)
    assert _found(f"E(17) = {run['table'][17]}", run)
    assert _found(f"r = {run['r']}", run)


@given(start=st.integers(0, 250), length=st.integers(WINDOW, 60), sep=st.sampled_from(["", "\n", " ", '",\n "']),
       noise=st.text(alphabet="abcxyz .,:\n", max_size=40))
def test_any_long_window_is_found_whatever_separates_it(run, start, length, sep, noise):
    digits = str(run["paillier"].lam)
    window = digits[start:start + length]
    public = str(run["paillier"].public.n)
    # digits that lambda shares with the public n are not a leak, by the scanner's rule (one key in six
    # has lambda = phi / 10, whose leading digits are n's): such windows say nothing here
    assume(not any(window[i:i + WINDOW] in public for i in range(len(window) - WINDOW + 1)))
    wrapped = sep.join(window[i:i + 17] for i in range(0, len(window), 17))
    assert _found(noise + wrapped + noise, run)


def test_files_notebooks_results_and_png_text_chunks(run, tmp_path):
    d = str(run["rsa"].d)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(key)")
    cell.outputs = [nbformat.v4.new_output("stream", text="d is\n" + d[:60] + "\n" + d[60:120])]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "executed.ipynb")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "clean.csv").write_text("a,b\n1,2\n")
    (tmp_path / "figures").mkdir()
    image = Image.new("L", (4, 4))
    for name, info in (("text", "add_text"), ("ztxt", "zip"), ("itxt", "add_itxt")):
        meta = PngImagePlugin.PngInfo()
        if info == "add_text":
            meta.add_text("Source", "r = " + str(run["r"]))
        elif info == "zip":
            meta.add_text("Comment", "table " + str(run["table"][3]), zip=True)
        else:
            meta.add_itxt("Description", "lambda " + str(run["paillier"].lam), zip=True)
        image.save(tmp_path / "figures" / f"{name}.png", pnginfo=meta)
    findings = scan_paths([tmp_path / "executed.ipynb", tmp_path / "results", tmp_path / "figures"], run["secrets"])
    where = {os.path.basename(f.where) for f in findings}
    assert where == {"executed.ipynb", "text.png", "ztxt.png", "itxt.png"}
    with pytest.raises(SecretLeakError, match="executed.ipynb") as error:
        assert_no_secrets([tmp_path], run["secrets"])
    assert d[:WINDOW] not in str(error.value)


def test_the_notebook_test_loop_fails_on_a_leak(run, tmp_path):
    """What tests/test_notebooks.py runs after each notebook, on a planted run folder."""
    run_dir = tmp_path
    (run_dir / "keys").symlink_to(run["keys"], target_is_directory=True)
    out = run_dir / "01_key_generation.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), out)
    (run_dir / "results").mkdir()
    (run_dir / "figures").mkdir()
    secrets = load_secrets(run_dir / "keys")
    assert not scan_paths([out, run_dir / "results", run_dir / "figures"], secrets)
    (run_dir / "results" / "06_attacks.csv").write_text(f"attack,value\nfixed_r,{hex(run['r'])}\n")
    findings = scan_paths([out, run_dir / "results", run_dir / "figures"], secrets)
    assert [f.form for f in findings] == ["hex"] and "fixed_r r" in findings[0].secret


def test_registry_location_rules_and_deduplication(tmp_path, monkeypatch):
    for forbidden in ("results", "figures"):
        with pytest.raises(SecretRegistryError, match=forbidden):
            SecretRegistry(tmp_path / forbidden / "secret_registry.jsonl")
    with pytest.warns(UserWarning, match="not registered"):
        assert secret_scan.activate_keys_dir(tmp_path / "results" / "keys") is None
    registry = secret_scan.activate(tmp_path / "keys")
    value = 10**40 + 7
    secret_scan.register_secret("test", "x", "k", value)
    secret_scan.register_secret("test", "x", "k", value)  # again: not duplicated
    secret_scan.register_secret("test", "tiny", "k", 12345)  # too short to scan: not recorded
    assert [(s.name, s.values) for s in registry.secrets()] == [("x", (value,))]
    monkeypatch.setenv(secret_scan.ENV_VAR, "off")
    secret_scan.register_secret("test", "y", "k", value + 1)
    monkeypatch.setenv(secret_scan.ENV_VAR, str(tmp_path / "env.jsonl"))
    secret_scan.register_secret("test", "z", "k", value + 2)
    assert len(registry.secrets()) == 1
    assert [s.name for s in SecretRegistry(tmp_path / "env.jsonl").secrets()] == ["z"]


def test_a_crash_cut_last_line_is_tolerated_a_corrupt_one_is_not(tmp_path):
    registry = SecretRegistry(tmp_path / "r.jsonl")
    registry.add("test", "a", "k", 10**30 + 1)
    registry.add("test", "b", "k", 10**30 + 2)
    raw = registry.path.read_bytes()
    registry.path.write_bytes(raw[:-10])
    with pytest.warns(UserWarning, match="incomplete last line"):
        assert [s.name for s in SecretRegistry(registry.path).secrets()] == ["a"]
    registry.path.write_bytes(b"{not json\n" + raw)
    with pytest.raises(SecretRegistryError, match="line 1"):
        SecretRegistry(registry.path).secrets()


def test_secrets_are_found_in_key_files_of_older_runs_without_registry(tmp_path):
    key = generate_keypair(1024, allow_insecure=True)
    keyfiles.save_private_key(key, tmp_path / "keys" / "old.INSECURE.private.json")
    (tmp_path / "keys" / secret_scan.REGISTRY_NAME).unlink()
    secrets = load_secrets(tmp_path / "keys")
    assert {s.name for s in secrets} == {"p", "q", "lambda", "mu"}
    assert scan_text(str(key.mu), secrets)


def test_digits_a_secret_shares_with_the_public_key_are_not_a_leak(run):
    """lambda = (p-1)(q-1)/g starts with n's digits whenever g is a power of ten (g = 10 for about one
    key in six here): printing n must not count as leaking lambda, printing lambda's own digits must."""
    key = run["paillier"]
    n = key.public.n
    lam = (n - key.p - key.q + 1) // 10  # what lambda is when gcd(p-1, q-1) = 10
    assert str(lam)[:40] == str(n)[:40]
    secret = secret_scan.Secret("paillier", "lambda", key.public.fingerprint, (lam,), public=(n,))
    assert scan_text(json.dumps({"n": str(n)}), [secret]) == []
    assert scan_text(f"leak: {str(lam)[-60:]}", [secret]) != []
