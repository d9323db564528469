"""Key-draw distributions read back from run records: the statistics are the ones a reader would compute."""
from __future__ import annotations

import matplotlib
import matplotlib.collections

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from ppdl_utils.records import EvaluationSummary, RecordError, RunRecord, TrainSummary
from ppdl_utils.reporting.key_draws import (
    bare_models,
    collect_draws,
    distribution,
    plot_draws,
    spread_predicts_accuracy,
)

NAMES = ["a", "b"]


def _record(run, label, key_draw, split_seed, accuracy, spread=None, order=0, **fields):
    n = 100
    y = np.array([0, 1] * (n // 2))
    wrong = int(round((1 - accuracy) * n))
    pred = y.copy()
    pred[:wrong] = 1 - pred[:wrong]
    return RunRecord(run=run, label=label, regime=label.split("+")[0], regime_label=label, class_names=NAMES,
                     summary=EvaluationSummary.from_predictions(y, pred, NAMES),
                     train=TrainSummary(best_epoch=1, best_val_accuracy=0.5, n_train=10, n_val=2),
                     key_draw=key_draw, split_seed=split_seed, order=order,
                     cipher_stats={} if spread is None else {"merge_spread": spread, "distinct_values": 160.0},
                     **({"key_fingerprint": f"key{key_draw}"} | fields))


@pytest.fixture
def draws(tmp_path):
    runs = []
    table = {(1, 1): (0.90, 2.0), (2, 1): (0.80, 9.0), (1, 2): (0.85, 4.0), (2, 2): (0.70, 12.0)}
    plain = {1: 0.95, 2: 0.90}
    for (k, s), (acc, spread) in table.items():
        run = f"x_key{k}_split{s}"
        runs.append(run)
        if k == 1:
            _record(run, "plain", k, s, plain[s]).save(tmp_path)
        _record(run, "table", k, s, acc, spread, order=1).save(tmp_path)
        _record(run, "table+input_table", k, s, min(1.0, acc + 0.05), spread, order=2).save(tmp_path)
    return collect_draws(tmp_path, runs)


def test_gaps_are_to_plain_of_the_same_split(draws):
    row = draws[(draws["label"] == "table") & (draws["key_draw"] == 2) & (draws["split_seed"] == 2)].iloc[0]
    assert row["plain_accuracy"] == pytest.approx(0.90) and row["gap_points"] == pytest.approx(-20.0)


def test_distribution_statistics(draws):
    table = distribution(draws)
    accs = np.array([0.90, 0.80, 0.85, 0.70])
    assert table.loc["table", "draws"] == 4
    assert table.loc["table", "mean"] == pytest.approx(accs.mean())
    assert table.loc["table", "sd"] == pytest.approx(accs.std(ddof=1))
    assert (table.loc["table", "min"], table.loc["table", "max"]) == (pytest.approx(0.70), pytest.approx(0.90))
    # within 2 points: table+input_table (key 1) is 0.95 vs plain 0.95 and 0.90 vs plain 0.90; key 2 is not
    assert table.loc["table+input_table", "within 2 points of plain"] == pytest.approx(0.5)
    assert list(table.index) == ["plain", "table", "table+input_table"]


def test_bare_models_are_the_deterministic_ones_without_the_input_layer(draws):
    bare = bare_models(draws)
    assert set(bare["label"]) == {"table"} and len(bare) == 4
    assert set(draws["label"]) - set(bare["label"]) == {"plain", "table+input_table"}


def test_spread_predicts_accuracy(draws):
    rho = spread_predicts_accuracy(draws)
    assert rho.loc["table", "rho(merge_spread, accuracy)"] == pytest.approx(-1.0)
    assert "table+input_table" not in rho.index and "plain" not in rho.index
    assert len(rho) == 1  # one bare regime: nothing to pool


def test_spread_pooled_over_regimes_uses_the_gap_to_plain(draws):
    other = draws[draws["label"] == "table"].assign(label="r_one", regime="r_one")
    other["merge_spread"] = -other["merge_spread"]  # r_one: the larger the spread, the better (by construction)
    other["gap_points"] = other["gap_points"] + 50  # and a different level: only ranks matter
    rho = spread_predicts_accuracy(pd.concat([draws, other], ignore_index=True))
    assert rho.loc["r_one", "rho(merge_spread, accuracy)"] == pytest.approx(1.0)
    pooled = rho.loc["bare regimes pooled (gap to plain)"]
    # table, then r_one; in floating point 100 * (0.90 - 0.95) is a hair below 100 * (0.85 - 0.90): no tie
    spreads, gaps = [2, 9, 4, 12, -2, -9, -4, -12], [-5.001, -15, -4.999, -20, 44.999, 35, 45.001, 30]
    assert pooled["draws"] == 8
    assert pooled["rho(merge_spread, accuracy)"] == pytest.approx(spearmanr(spreads, gaps).statistic)


def test_plot_has_a_point_per_draw(draws):
    fig = plot_draws(draws)
    points = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == len(draws)


def test_earlier_runs_of_the_same_recipe_count_as_draws_of_their_seed(tmp_path, draws):
    # a run made before make key_draws: no key_draw/split_seed, its own key, split seed = its seed (0)
    for label, acc in (("plain", 0.96), ("table", 0.86), ("randomized", 0.5)):
        _record("x", label, None, None, acc, key_fingerprint="old key", seed=0).save(tmp_path)
    for (k, s) in ((1, 1), (2, 1)):
        _record(f"x_key{k}_split{s}", "table", k, s, 0.8).save(tmp_path)
    _record("x_key1_split1", "plain", 1, 1, 0.9).save(tmp_path)
    frame = collect_draws(tmp_path, ["x", "x_key1_split1", "x_key2_split1"])
    assert "randomized" not in set(frame["label"])
    old = frame[frame["key"] == "old key"].set_index("label")
    assert old.loc["table", "split_seed"] == 0 and old.loc["table", "gap_points"] == pytest.approx(-10.0)
    assert frame["key_index"].nunique() == 3  # old key, key1, key2


def test_runs_of_different_recipes_are_refused_naming_the_field(tmp_path):
    _record("a_key1_split1", "table", 1, 1, 0.8).save(tmp_path)
    _record("b_key1_split1", "table", 1, 1, 0.8, epochs=20).save(tmp_path)
    with pytest.raises(RecordError, match="epochs=20"):
        collect_draws(tmp_path, ["a_key1_split1", "b_key1_split1"])
    _record("e_key1_split1", "table", 1, 1, 0.8, data="/elsewhere/covid19_radiography_3class").save(tmp_path)
    with pytest.raises(RecordError, match="covid19_radiography_3class"):
        collect_draws(tmp_path, ["a_key1_split1", "e_key1_split1"])
    _record("c_key1_split1", "table", 1, 1, 0.8, settings={"lr": 1e-3}).save(tmp_path)
    _record("d_key1_split1", "table", 1, 1, 0.8, settings={"lr": 5e-4}).save(tmp_path)
    with pytest.raises(RecordError, match="lr=0.0005"):
        collect_draws(tmp_path, ["c_key1_split1", "d_key1_split1"])
