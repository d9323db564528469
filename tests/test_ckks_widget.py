"""The CKKS playground: depth, error and size per multiplication; failures are shown, in red."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.crypto import ckks
from ppdl_utils.teaching.ckks_widget import (
    CKKSPlayground,
    ckks_depth_demo,
    ckks_playground,
    parse_chain,
    security_label,
)

STANDARD = ckks.CKKSParams(8192, (60, 40, 40, 60), 40, "standard")


@settings(max_examples=10, deadline=None)
@given(middle=st.integers(0, 6), scale=st.integers(20, 50))
def test_parse_chain_number_and_list(middle, scale):
    chain = parse_chain(str(middle), scale)
    assert len(chain) == middle + 2 and chain[1:-1] == (scale,) * middle and chain[0] == min(60, scale + 20)
    assert parse_chain(",".join(map(str, chain)), scale) == chain


def test_parse_chain_rejects_garbage():
    with pytest.raises(ckks.CKKSParameterError, match="modulus chain 'forty'"):
        parse_chain("forty", 40)


def test_depth_demo_tracks_error_depth_and_size():
    values = [0.9, -0.5, 0.25]
    table = ckks_depth_demo(STANDARD, values, 2)
    assert list(table["remaining_depth"]) == [2, 1, 0]
    assert table["ciphertext_bytes"].is_monotonic_decreasing  # each rescale drops one prime
    assert (table["max_abs_error"] < 1e-5).all() and table["max_abs_error"].iloc[-1] > table["max_abs_error"].iloc[0]
    assert table["security"].str.startswith("128-bit").all()
    assert list(table["operation"]) == ["encrypt", "x^2", "x^3"]


def test_depth_demo_raises_when_the_chain_runs_out():
    with pytest.raises(ckks.DepthExhaustedError, match="multiplication 3 of 3.*allow 2") as info:
        ckks_depth_demo(STANDARD, [0.5], 3)
    assert len(info.value.table) == 3  # encrypt + the two multiplications that fitted


def test_insecure_parameters_are_labelled_and_refused():
    over = ckks.CKKSParams(4096, (60, 40, 40, 60), 40)
    assert security_label(over).startswith("INSECURE") and "109" in security_label(over)
    with pytest.raises(ckks.InsecureParametersError, match="109"):
        ckks_depth_demo(over, [0.5], 1)
    table = ckks_depth_demo(ckks.insecure_test_params(), [0.5, 0.25], 1)
    assert (table["security"] == ckks.INSECURE_LABEL).all()
    assert np.isclose(table["max_abs_error"].iloc[-1], 0, atol=1e-4)


def test_widget_shows_table_and_red_errors():
    playground = ckks_playground()
    assert isinstance(playground, CKKSPlayground) and playground.error is None
    assert "<table" in playground.output.value and "128-bit" in playground.security.value
    playground.n_mults.value = 3
    playground.run()
    assert isinstance(playground.error, ckks.DepthExhaustedError)
    assert 'color:#c00' in playground.output.value and "DepthExhaustedError" in playground.output.value
    assert "<table" in playground.output.value  # the rows that fitted are still shown
    playground.chain.value = "40,40"  # scale 40 is not below the first prime
    playground.run()
    assert "ScaleMismatchError" in playground.output.value and "color:#c00" in playground.output.value
    playground.ring.value, playground.chain.value = 4096, "60,40,40,60"
    playground.run()
    assert "InsecureParametersError" in playground.output.value
    assert "INSECURE" in playground.security.value and "#c00" in playground.security.value
