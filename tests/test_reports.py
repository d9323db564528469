"""Report tables against scikit-learn; misclassification shares on a hand-made confusion matrix."""
from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from ppdl_utils.records import EvaluationSummary
from ppdl_utils.reporting import reports

NAMES = ["Covid", "Lung_Opacity", "Normal", "Viral_Pneumonia"]


def _known_predictions(seed: int = 3):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, size=300)
    y_pred = np.where(rng.random(300) < 0.8, y_true, rng.integers(0, 4, size=300))
    return y_true, y_pred


def test_classification_table_matches_sklearn():
    y_true, y_pred = _known_predictions()
    table = reports.classification_table(y_true, y_pred, NAMES)
    assert list(table.index) == NAMES + ["Accuracy", "Macro avg", "Weighted avg"]
    assert list(table.columns) == ["precision", "recall", "f1-score", "support"]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    for k, name in enumerate(NAMES):
        assert table.loc[name, "precision"] == round(p[k], 3)
        assert table.loc[name, "recall"] == round(r[k], 3)
        assert table.loc[name, "f1-score"] == round(f[k], 3)
        assert table.loc[name, "support"] == s[k]
    assert table.loc["Accuracy", "f1-score"] == round(accuracy_score(y_true, y_pred), 3)
    assert table.loc["Accuracy", "support"] == 300 and np.isnan(table.loc["Accuracy", "precision"])
    for row, avg in (("Macro avg", "macro"), ("Weighted avg", "weighted")):
        expected = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)[:3]
        assert tuple(table.loc[row, ["precision", "recall", "f1-score"]]) == tuple(round(v, 3) for v in expected)


def test_summary_and_paper_tables():
    y_true, y_pred = _known_predictions(5)
    summary = dataclasses.asdict(EvaluationSummary.from_predictions(y_true, y_pred, NAMES))
    assert summary["test_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    plain, enc = reports.paper_table("plain"), reports.paper_table("encrypted")
    assert plain.loc["Accuracy", "f1-score"] == 0.942 and enc.loc["Accuracy", "f1-score"] == 0.932
    assert plain.loc["Viral_Pneumonia", "f1-score"] == 0.983 and enc.loc["Viral_Pneumonia", "f1-score"] == 0.876
    assert plain.loc[NAMES, "support"].sum() == 1748
    assert reports.PAPER["plain"]["best_epoch"] == 74 and reports.PAPER["encrypted"]["best_val_accuracy"] == 0.9497
    both = reports.comparison_table({"ours: plain": summary}, ["COVID", "Normal"],
                                    {"ours: plain": summary["f1"] | {"COVID": 0.5, "Normal": 0.25}})
    assert both.loc["test_accuracy", "paper: plain"] == 0.942
    assert both.loc["f1 COVID", "paper: encrypted"] == 0.983 and both.loc["f1 COVID", "ours: plain"] == 0.5


def test_misclassification_shares_hand_made():
    # rows true, columns predicted; 20 errors in all, 15 of them between Lung_Opacity and Normal
    cm = np.array([[50, 1, 1, 0],
                   [0, 40, 10, 1],
                   [1, 5, 60, 0],
                   [0, 0, 1, 30]])
    shares = reports.misclassification_shares(cm, NAMES)
    top = shares.iloc[0]
    assert (top.class_a, top.class_b, top.a_as_b, top.b_as_a, top.errors) == ("Lung_Opacity", "Normal", 10, 5, 15)
    assert top.share == pytest.approx(15 / 20)
    assert shares["errors"].sum() == 20 and shares["share"].sum() == pytest.approx(1.0)
    assert len(shares) == 6
    assert reports.pair_share(cm, NAMES, "Normal", "Lung_Opacity") == pytest.approx(0.75)
    assert reports.pair_share(cm, NAMES, "Covid", "Viral_Pneumonia") == 0
    assert np.isnan(reports.pair_share(np.eye(4, dtype=int), NAMES, "Covid", "Normal"))
    with pytest.raises(ValueError):
        reports.misclassification_shares(cm[:3, :3], NAMES)


def test_confusion_and_figures():
    y_true, y_pred = _known_predictions()
    cm = reports.confusion(y_true, y_pred, 4)
    assert cm.sum() == 300 and np.trace(cm) == (y_true == y_pred).sum()
    fig = reports.plot_confusion_matrix(cm, NAMES, "test")
    history = pd.DataFrame({"epoch": [1, 2, 3], "accuracy": [0.5, 0.7, 0.9], "val_accuracy": [0.5, 0.8, 0.7],
                            "loss": [1.0, 0.6, 0.3], "val_loss": [1.0, 0.5, 0.6]})
    fig2 = reports.plot_training_curves(history, best_epoch=2, title="t")
    assert fig and fig2
    matplotlib.pyplot.close("all")


def test_wilson_interval():
    low, high = reports.wilson_interval(187, 200)
    assert low < 187 / 200 < high and 0.88 < low < 0.90 and 0.96 < high < 0.97
    assert reports.wilson_interval(10, 20)[0] == pytest.approx(0.299, abs=1e-3)
    assert reports.wilson_interval(0, 0)[0] != reports.wilson_interval(0, 0)[0]  # nan
    assert EvaluationSummary.from_predictions([0, 1, 1, 0], [0, 1, 0, 0], ["a", "b"]).test_accuracy_ci95[1] <= 1


def test_budget_gaps_compare_at_the_same_budget():
    index = pd.Index([1, 2, 3, 4], name="epochs")
    curves = {"plain": pd.DataFrame({"test accuracy": [0.80, 0.90, 0.95, 0.95]}, index=index),
              "table": pd.DataFrame({"test accuracy": [0.50, 0.70, 0.94, 0.90]}, index=index),
              "never": pd.DataFrame({"test accuracy": [0.5, 0.5, 0.5, 0.5]}, index=index)}
    table = reports.budget_gaps(curves)
    assert list(table.index) == ["table", "never"]
    row = table.loc["table"]
    assert row["epochs"] == 4 and row["test accuracy"] == 0.90 and row["plain"] == 0.95
    assert row["gap (points)"] == 5.0 and row["smallest gap (points)"] == 1.0
    assert row["epochs to within 2 points"] == 3
    assert pd.isna(table.loc["never", "epochs to within 2 points"])  # never within reach
    with pytest.raises(KeyError, match="no 'plain' run"):
        reports.budget_gaps({"table": curves["table"]})
    fig = reports.plot_budget_curves(curves, title="t")
    assert len(fig.axes[0].lines) == 3
