"""The privacy ladder: the table and figure from notebook 03's records, 06's attacks and the study's rows;
rung 2 measured by the study itself; the paired test of every rung against plain."""
from __future__ import annotations

import matplotlib
import matplotlib.collections
import matplotlib.container

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.records import EvaluationSummary, RunRecord, TrainSummary, mcnemar_exact
from ppdl_utils.reporting import ladder
from ppdl_utils.studies import ladder as ladder_study

Y = np.array([0, 1] * 50)


def _wrong(accuracy: float, start: int = 0) -> np.ndarray:
    """Predictions of Y with the first (from `start`) 1 - accuracy of them wrong."""
    pred = Y.copy()
    pred[start:start + int(round((1 - accuracy) * len(Y)))] ^= 1
    return pred


def _record(label: str, regime: str, accuracy: float) -> RunRecord:
    pred = _wrong(accuracy)
    shuffled = np.random.default_rng(0).permutation(len(Y))  # the CSV's row order is not the test order
    table = pd.DataFrame({"test_index": shuffled, "y_true": Y[shuffled], "y_pred": pred[shuffled]})
    return RunRecord(run="r", label=label, regime=regime, regime_label=regime, class_names=["a", "b"],
                     summary=EvaluationSummary.from_predictions(Y, pred, ["a", "b"]),
                     train=TrainSummary(best_epoch=1, best_val_accuracy=0.5, n_train=10, n_val=2), seed=0,
                     predictions=table)


def _linear(scheme: str, accuracy: float, **costs) -> dict:
    """A rung-2 row as the study writes it (see test_study_rung2_rows_are_exact_and_carry_predictions)."""
    return {"rung": 2, "name": f"rung 2: linear head, {scheme}", "accuracy": accuracy, "n_test": 100,
            "security": {"Paillier": "112-bit classical (Paillier 2048, DCR), randomized",
                         "LWE": "~128-bit classical (LWE n=1024, log q=27), randomized"}[scheme],
            "mismatches_vs_twin": 0, "predictions": _wrong(accuracy, start=50), "y_true": Y, "split_seed": 0,
            **costs}


@pytest.fixture
def table() -> pd.DataFrame:
    records = {"plain": _record("plain", "plain", 0.96), "table": _record("table", "table", 0.85),
               "table+input_table": _record("table+input_table", "table", 0.91),
               "randomized": _record("randomized", "randomized", 0.5)}
    leakage = pd.DataFrame({"scheme": ["Paillier", "Paillier", "LWE"],
                            "regime": ["table (deterministic, NOT secure)", "randomized (semantically secure)",
                                       "fixed_r (deterministic)"],
                            "attack_ssim_median": [0.978, 0.22, 1.0]})
    mlp = {"rung": 3, "name": "rung 3: MLP head on encrypted features", "accuracy": 0.8, "n_test": 60,
           "encrypt_ms": 11.0, "server_ms": 850.0, "decrypt_ms": 1.0, "security": "MLP_8192: ... 128-bit classical",
           "mismatches_vs_twin": 0}
    rows = [mlp] + ladder.record_rows(records, ladder.attack_ssim(leakage)) + [
        _linear("Paillier", 0.88, encrypt_ms=127.0, server_ms=189.0, decrypt_ms=5.0),
        _linear("LWE", 0.81, encrypt_ms=0.5, server_ms=0.3, decrypt_ms=0.01)]
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
    assert labels[0] == "0 plain · no protection"
    assert labels[1] == "1 table · NOT secure"
    assert labels[3] == "2 Paillier · 112-bit"
    assert labels[4].endswith("~128-bit") and labels[5] == "3 MLP head · 128-bit"


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


def test_every_rung_with_predictions_is_paired_with_plain(table):
    """McNemar's exact test on the same images: plain's wrong predictions are the first 4, Paillier's
    the 12 from image 50 on; rung 3 carries no predictions and plain is not tested against itself."""
    p = dict(zip(table["name"], table["mcnemar_p_vs_plain"]))
    assert p["rung 2: linear head, Paillier"] == pytest.approx(
        mcnemar_exact(_wrong(0.88, start=50) == Y, _wrong(0.96) == Y)[0])
    assert p["rung 1: table (notebook 03)"] == pytest.approx(mcnemar_exact(_wrong(0.85) == Y, _wrong(0.96) == Y)[0])
    assert np.isnan(p["rung 0: plain (notebook 03)"]) and np.isnan(p["rung 3: MLP head on encrypted features"])
    assert p["rung 1: table (notebook 03)"] < 0.05 < p["rung 1: table+input_table (notebook 03)"]
    assert "predictions" not in table and "y_true" not in table


def test_without_plain_predictions_the_paired_column_stays_empty():
    rows = [{"rung": 0, "name": "rung 0: plain", "accuracy": 0.96, "n_test": 100, "security": "none"},
            _linear("LWE", 0.81)]
    assert ladder.ladder_table(rows)["mcnemar_p_vs_plain"].isna().all()


def test_other_test_images_are_not_paired():
    plain = {"rung": 0, "name": "rung 0: plain", "accuracy": 0.96, "n_test": 100, "security": "none",
             "predictions": _wrong(0.96), "y_true": Y, "split_seed": 1}
    with pytest.warns(UserWarning, match="not plain's"):
        table = ladder.ladder_table([plain, _linear("LWE", 0.81)])  # split seed 0 against 1
    assert table["mcnemar_p_vs_plain"].isna().all()
    flipped = {**_linear("LWE", 0.81), "y_true": Y[::-1]}
    with pytest.warns(UserWarning, match="not plain's"):
        assert ladder.ladder_table([{**plain, "split_seed": 0}, flipped])["mcnemar_p_vs_plain"].isna().all()


def test_study_rung2_rows_are_exact_and_carry_predictions():
    """Rung 2 on a small synthetic set, Paillier under a labelled test key: every decrypted score equals
    the integer twin, every test image of the split has its prediction."""
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 60)
    features = rng.normal(size=(120, 16)) + 1.2 * labels[:, None] * (np.arange(16) < 4)
    hashes = [f"{i:04x}" for i in range(120)]
    rows = ladder_study.linear_rows(features, labels, hashes, paillier_key=generate_keypair(512, allow_insecure=True),
                                    lwe_dim=8)
    assert [r["name"].split(",")[1].strip() for r in rows] == ["Paillier", "LWE"]
    for row in rows:
        assert row["mismatches_vs_twin"] == 0 and row["max_score_error"] == 0
        assert len(row["predictions"]) == row["n_test"] == len(row["y_true"]) == 12
        assert row["accuracy"] == pytest.approx(float((row["predictions"] == row["y_true"]).mean()))
    paillier = rows[0]
    assert paillier["float_head_mismatches"] <= paillier["near_ties"]
    assert paillier["security"] == "none: toy key (Paillier 512, teaching only)"  # never labelled secure
    plain = {"rung": 0, "name": "rung 0: plain", "accuracy": 1.0, "n_test": 12, "security": "none",
             "predictions": rows[0]["y_true"], "y_true": rows[0]["y_true"], "split_seed": 0}
    table = ladder.ladder_table([plain] + rows)
    assert table["mcnemar_p_vs_plain"].notna().sum() == 2
