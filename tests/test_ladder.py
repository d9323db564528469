"""The privacy ladder's table and figure: rows from notebook 03's records, 06's attacks and 07's CSV."""
from __future__ import annotations

import matplotlib
import matplotlib.collections
import matplotlib.container

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from ppdl_utils.records import EvaluationSummary, RunRecord, TrainSummary
from ppdl_utils.reporting import ladder


def _record(label: str, regime: str, accuracy: float) -> RunRecord:
    y = np.array([0, 1] * 50)
    pred = y.copy()
    pred[:int(round((1 - accuracy) * len(y)))] ^= 1
    return RunRecord(run="r", label=label, regime=regime, regime_label=regime, class_names=["a", "b"],
                     summary=EvaluationSummary.from_predictions(y, pred, ["a", "b"]),
                     train=TrainSummary(best_epoch=1, best_val_accuracy=0.5, n_train=10, n_val=2))


@pytest.fixture
def table(tmp_path) -> pd.DataFrame:
    records = {"plain": _record("plain", "plain", 0.96), "table": _record("table", "table", 0.85),
               "table+input_table": _record("table+input_table", "table", 0.91),
               "randomized": _record("randomized", "randomized", 0.5)}
    leakage = pd.DataFrame({"scheme": ["Paillier", "Paillier", "LWE"],
                            "regime": ["table (deterministic, NOT secure)", "randomized (semantically secure)",
                                       "fixed_r (deterministic)"],
                            "attack_ssim_median": [0.978, 0.22, 1.0]})
    csv = tmp_path / "07.csv"
    pd.DataFrame({"scheme": ["Paillier", "LWE"], "accuracy": [0.88, 0.81], "images": [200, 200],
                  "client_encrypt_ms": [127.0, 0.5], "server_ms": [189.0, 0.3], "client_decrypt_ms": [5.0, 0.01],
                  "bytes_up": [655360, 131200], "bytes_down": [512, 8200], "mismatches": [0, 0]}).to_csv(csv)
    mlp = {"rung": 3, "name": "rung 3: MLP head on encrypted features", "accuracy": 0.8, "n_test": 60,
           "encrypt_ms": 11.0, "server_ms": 850.0, "decrypt_ms": 1.0, "security": "MLP_8192: ... 128-bit classical",
           "mismatches_vs_twin": 0}
    rows = [mlp] + ladder.record_rows(records, ladder.attack_ssim(leakage)) + ladder.private_inference_rows(csv)
    return ladder.ladder_table(rows)


def test_rows_in_rung_order_with_costs_and_what_the_server_learns(table):
    assert table["rung"].tolist() == [0, 1, 1, 2, 2, 3]  # randomized is rung 2+ territory, not a record row
    assert table.loc[1, "server_learns"] == "the image (attack SSIM 0.98)"  # the table regime's attack
    assert table.loc[3, "end_to_end_ms"] == pytest.approx(127 + 189 + 5)
    assert np.isnan(table.loc[0, "end_to_end_ms"])  # training runs: no inference latency measured
    assert table.loc[0, "accuracy_ci95"] == "90.2%–98.4%"  # Wilson, 96/100
    assert table.loc[5, "accuracy_ci95"] != "" and table.loc[1, "security"].endswith("NOT secure")


def test_point_labels_say_the_security_in_short(table):
    labels = [ladder.point_label(row) for _, row in table.iterrows()]
    assert labels[0] == "0 plain (notebook 03) · no protection"
    assert labels[1] == "1 table (notebook 03) · NOT secure"
    assert labels[3] == "2 linear head, Paillier (notebook 07) · 112-bit"
    assert labels[4].endswith("~128-bit") and labels[5] == "3 MLP head on encrypted features · 128-bit"


def test_ladder_figure_has_a_point_per_row_untimed_rows_at_the_left(table):
    fig = ladder.plot_ladder(table)
    ax = fig.axes[0]
    points = np.concatenate([c[0].get_xydata() for c in ax.containers
                             if isinstance(c, matplotlib.container.ErrorbarContainer)])
    assert len(points) == len(table)  # one point (with its CI bar) per row
    untimed = points[np.isin(points[:, 1], table.loc[table["end_to_end_ms"].isna(), "accuracy"])]
    assert np.all(untimed[:, 0] < table["end_to_end_ms"].min())
    texts = [t.get_text() for t in ax.texts]
    assert "no HE" in texts and len(ax.texts) == len(table) + 1
    assert all(ax.get_xlim()[0] < p for p in points[:, 0])
    assert ax.get_legend() is not None


@pytest.mark.parametrize("accuracy", [0.0, 1.0, 0.97])
def test_ladder_figure_takes_accuracies_at_the_bounds(accuracy):
    """A rung at 100% (or 0%) has an interval that touches the bound: its error bar is drawn, not refused."""
    rows = [{"rung": 0, "name": "rung 0: plain", "accuracy": accuracy, "n_test": 100, "security": "none"},
            {"rung": 3, "name": "rung 3: MLP", "accuracy": 0.9, "n_test": 100, "encrypt_ms": 1.0, "server_ms": 1.0,
             "decrypt_ms": 0.1, "security": "128-bit classical"}]
    fig = ladder.plot_ladder(ladder.ladder_table(rows))
    bars = [c for c in fig.axes[0].containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == 2
