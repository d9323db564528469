"""A parameter file or -p option that names a parameter the notebook lacks stops the run before it starts."""
from __future__ import annotations

from pathlib import Path

import pytest

from ppdl_utils.notebook_params import ParameterError, check, given_parameters, main, notebook_parameters

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_training.ipynb"


def test_known_parameters_pass(tmp_path):
    params = tmp_path / "ok.yaml"
    params.write_text("epochs: 3\nregimes: [plain]\n")
    check(NOTEBOOK, ["-f", str(params), "-p", "seed", "1", "-y", "monitor_test: 1"])
    assert {"epochs", "regimes", "seed", "monitor_test"} <= notebook_parameters(NOTEBOOK)


def test_an_unknown_key_in_a_parameter_file_is_named(tmp_path, capsys):
    params = tmp_path / "typo.yaml"
    params.write_text("epochs: 3\nepoch: 5\n")
    with pytest.raises(ParameterError, match=r"'epoch' \(from -f .*typo.yaml\)"):
        check(NOTEBOOK, ["-f", str(params)])
    assert main([str(NOTEBOOK), "-p", "lerning_rate", "1e-3"]) == 2
    assert "lerning_rate" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["- a\n- b\n", "epochs: [1\n"])
def test_unreadable_parameter_files_are_errors(tmp_path, text):
    params = tmp_path / "bad.yaml"
    params.write_text(text)
    with pytest.raises(ParameterError, match="bad.yaml"):
        given_parameters(["-f", str(params)])
