"""Results the way the paper reports them, next to the paper's own numbers.

* :func:`classification_table` — per-class precision / recall / F1 / support, accuracy, macro and
  weighted averages, three decimals (Tables II–III), computed by scikit-learn;
* :func:`plot_confusion_matrix` (Figs. 6–7) and :func:`misclassification_shares` (the paper: 76% /
  67% of the errors are between Normal and Lung opacity);
* :func:`plot_training_curves` — train and validation accuracy per epoch, best epoch marked
  (Figs. 4–5);
* :data:`PAPER` — the paper's reported numbers as data, and :func:`comparison_table`;
* run records (histories, predictions, provenance) are :class:`ppdl_utils.records.RunRecord`.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from ppdl_utils.records import RunRecord, wilson_interval  # noqa: F401  (the papers' tables quote it)

COLUMNS = ["precision", "recall", "f1-score", "support"]

# --------------------------------------------------------------------------------------------
# the paper's numbers (Tables II and III, Section IV.C)
# --------------------------------------------------------------------------------------------
_PAPER_ROWS = {
    "plain": {  # Table II, testing set of the plain data
        "Covid": (0.994, 0.949, 0.971, 350), "Lung_Opacity": (0.953, 0.903, 0.927, 601),
        "Normal": (0.902, 0.967, 0.934, 676), "Viral_Pneumonia": (0.992, 0.975, 0.983, 121),
        "Accuracy": (np.nan, np.nan, 0.942, 1748), "Macro avg": (0.96, 0.949, 0.954, 1748),
        "Weighted avg": (0.944, 0.942, 0.942, 1748)},
    "encrypted": {  # Table III, testing set of the encrypted data
        "Covid": (0.986, 0.980, 0.983, 350), "Lung_Opacity": (0.921, 0.912, 0.916, 601),
        "Normal": (0.908, 0.953, 0.930, 676), "Viral_Pneumonia": (0.990, 0.785, 0.876, 121),
        "Accuracy": (np.nan, np.nan, 0.932, 1748), "Macro avg": (0.951, 0.907, 0.926, 1748),
        "Weighted avg": (0.934, 0.932, 0.932, 1748)},
}

#: Headline numbers of the paper.  Its text swaps plain/encrypted once ("encrypted (94.22%) and
#: plain (93.25%)"); the abstract, conclusion and Tables II–III give plain 94.2%, encrypted 93.3%
#: (Table III rounds to 0.932).
PAPER = {
    "plain": {"test_accuracy": 0.942, "best_val_accuracy": 0.9504, "best_epoch": 74,
              "macro_f1": 0.954, "weighted_f1": 0.942, "n_test": 1748,
              "share_normal_lung_opacity": 0.76, "classes": 4},
    "encrypted": {"test_accuracy": 0.933, "best_val_accuracy": 0.9497, "best_epoch": 77,
                  "macro_f1": 0.926, "weighted_f1": 0.932, "n_test": 1748,
                  "share_normal_lung_opacity": 0.67, "classes": 4},
}
PAPER_SPLIT = pd.DataFrame(  # Table I
    {"Training": [2801, 4801, 5403, 963], "Validation": [350, 601, 675, 120], "Testing": [350, 601, 676, 121]},
    index=pd.Index(["COVID-19", "Lung Opacity", "Normal", "Viral pneumonia"], name="Class"))


def paper_table(data: str = "plain") -> pd.DataFrame:
    """The paper's Table II (``"plain"``) or Table III (``"encrypted"``) as a DataFrame."""
    if data not in _PAPER_ROWS:
        raise ValueError(f"data must be 'plain' or 'encrypted', got {data!r}")
    table = pd.DataFrame.from_dict(_PAPER_ROWS[data], orient="index", columns=COLUMNS)
    table["support"] = table["support"].astype(int)
    return table


# --------------------------------------------------------------------------------------------
# our tables
# --------------------------------------------------------------------------------------------
def classification_table(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str],
                         digits: int = 3) -> pd.DataFrame:
    """Per-class precision / recall / F1 / support, then Accuracy, Macro avg, Weighted avg rows,
    rounded to `digits` (the layout of the paper's Tables II–III; the Accuracy row has the
    accuracy in the f1-score column and the number of test images as support)."""
    labels = list(range(len(class_names)))
    report = classification_report(np.asarray(y_true), np.asarray(y_pred), labels=labels,
                                   target_names=list(class_names), output_dict=True, zero_division=0)
    rows = {name: report[name] for name in class_names}
    n = int(sum(report[name]["support"] for name in class_names))
    accuracy = report.get("accuracy")
    if accuracy is None:  # sklearn leaves it out when labels do not cover y_true; compute it
        accuracy = float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
    rows["Accuracy"] = {"precision": np.nan, "recall": np.nan, "f1-score": accuracy, "support": n}
    rows["Macro avg"] = report["macro avg"]
    rows["Weighted avg"] = report["weighted avg"]
    table = pd.DataFrame.from_dict(rows, orient="index")[COLUMNS]
    table[COLUMNS[:3]] = table[COLUMNS[:3]].astype(float).round(digits)
    table["support"] = table["support"].astype(int)
    return table


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class."""
    return confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(range(n_classes)))


def misclassification_shares(cm: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """Each unordered class pair's share of all misclassifications (both directions counted),
    largest first.  The paper: 76% (plain) and 67% (encrypted) between Normal and Lung opacity."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"confusion matrix of shape {cm.shape} does not match {len(class_names)} class names")
    total = int(cm.sum() - np.trace(cm))
    rows = []
    for i in range(len(class_names)):
        for j in range(i + 1, len(class_names)):
            errors = int(cm[i, j] + cm[j, i])
            rows.append({"pair": f"{class_names[i]} ↔ {class_names[j]}", "class_a": class_names[i],
                         "class_b": class_names[j], "a_as_b": int(cm[i, j]), "b_as_a": int(cm[j, i]), "errors": errors,
                         "share": errors / total if total else np.nan})
    table = pd.DataFrame(rows, columns=["pair", "class_a", "class_b", "a_as_b", "b_as_a", "errors", "share"])
    return table.sort_values("errors", ascending=False, kind="stable").reset_index(drop=True)


def pair_share(cm: np.ndarray, class_names: Sequence[str], a: str, b: str) -> float:
    """Share of all misclassifications that are between classes `a` and `b` (either direction)."""
    names = list(class_names)
    for c in (a, b):
        if c not in names:
            raise ValueError(f"class {c!r} not in {names}")
    cm = np.asarray(cm)
    total = cm.sum() - np.trace(cm)
    i, j = names.index(a), names.index(b)
    return float((cm[i, j] + cm[j, i]) / total) if total else float("nan")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower()).replace("covid19", "covid")


def comparison_table(ours: Mapping[str, Mapping], class_names: Sequence[str] = (),
                     per_class_f1: Mapping[str, Mapping[str, float]] | None = None) -> pd.DataFrame:
    """Side by side: the paper's plain and encrypted results and each of our runs.

    Args:
        ours: ``{column label: summary}`` with keys ``test_accuracy``, ``macro_f1``, ``weighted_f1``,
            ``best_val_accuracy``, ``best_epoch`` (others are ignored; missing ones left blank).
        class_names: our classes; their F1 rows are added, matched to the paper's by name.
        per_class_f1: ``{column label: {class name: f1}}`` for those rows.
    """
    metrics = ["test_accuracy", "macro_f1", "weighted_f1", "best_val_accuracy", "best_epoch", "n_test", "classes"]
    columns = {"paper: plain": PAPER["plain"], "paper: encrypted": PAPER["encrypted"]}
    columns.update({str(k): dict(v) for k, v in ours.items()})
    table = pd.DataFrame({col: {m: vals.get(m, np.nan) for m in metrics} for col, vals in columns.items()})
    paper_f1 = {d: {_norm(k): v[2] for k, v in _PAPER_ROWS[d].items()} for d in _PAPER_ROWS}
    for name in class_names:
        row = {"paper: plain": paper_f1["plain"].get(_norm(name), np.nan),
               "paper: encrypted": paper_f1["encrypted"].get(_norm(name), np.nan)}
        for col in ours:
            row[str(col)] = (per_class_f1 or {}).get(col, {}).get(name, np.nan)
        table.loc[f"f1 {name}"] = pd.Series(row)
    return table


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str], title: str = "") -> plt.Figure:
    """Seaborn heat map of counts with the row percentage in each cell (Figs. 6–7)."""
    import seaborn as sns

    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    annot = np.array([[f"{cm[i, j]}\n{pct[i, j]:.1%}" for j in range(cm.shape[1])] for i in range(cm.shape[0])])
    side = 1.1 + 0.9 * len(class_names)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    sns.heatmap(cm, annot=annot, fmt="", cmap="Blues", cbar=True, square=True, ax=ax,
                xticklabels=class_names, yticklabels=class_names, annot_kws={"fontsize": 8})
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def plot_training_curves(history: pd.DataFrame, best_epoch: int | None = None, title: str = "") -> plt.Figure:
    """Training and validation accuracy (left) and loss (right) per epoch; the best validation
    epoch (the weights kept) is marked (Figs. 4–5)."""
    epochs = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax1.plot(epochs, history["accuracy"], "o-", ms=3, label="training")
    ax1.plot(epochs, history["val_accuracy"], "s-", ms=3, label="validation")
    ax2.plot(epochs, history["loss"], "o-", ms=3, label="training")
    ax2.plot(epochs, history["val_loss"], "s-", ms=3, label="validation")
    if best_epoch is not None:
        best = float(history.loc[history["epoch"] == best_epoch, "val_accuracy"].iloc[0]) \
            if "epoch" in history else float(history["val_accuracy"].iloc[best_epoch - 1])
        for ax in (ax1, ax2):
            ax.axvline(best_epoch, color="0.5", ls=":", lw=1)
        ax1.plot([best_epoch], [best], "*", ms=12, color="crimson",
                 label=f"best val {best:.2%} @ epoch {best_epoch}")
    ax1.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax2.set(xlabel="epoch", ylabel="loss")
    ax1.legend(fontsize=7, loc="lower right")
    ax2.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def budget_gaps(curves: Mapping[str, pd.DataFrame], reference: str = "plain",
                within: float = 0.02) -> pd.DataFrame:
    """One row per run: its test accuracy at the longest budget, the reference's at the same budget,
    and the smallest budget at which it is within `within` of the reference *at that same budget*.

    `curves`: label -> :func:`ppdl_utils.learning.training.budget_curve` (index = budget in epochs)."""
    if reference not in curves:
        raise KeyError(f"no {reference!r} run among {sorted(curves)}; train it in the same run")
    ref = curves[reference]["test accuracy"]
    rows = {}
    for label, curve in curves.items():
        if label == reference:
            continue
        acc = curve["test accuracy"]
        budgets = acc.index.intersection(ref.index)
        gap = ref[budgets] - acc[budgets]
        ok = budgets[gap <= within + 1e-9]
        last = budgets.max()
        rows[label] = {"epochs": int(last), "test accuracy": float(acc[last]), reference: float(ref[last]),
                       "gap (points)": round(100 * float(gap[last]), 1),
                       "smallest gap (points)": round(100 * float(gap.min()), 1),
                       f"epochs to within {100 * within:g} points": int(ok[0]) if len(ok) else None}
    return pd.DataFrame(rows).T


def plot_budget_curves(curves: Mapping[str, pd.DataFrame], reference: str = "plain", within: float = 0.02,
                       title: str = "") -> plt.Figure:
    """Test accuracy of the best-validation model against the training budget, one line per run,
    with the band `within` below the reference."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for label, curve in curves.items():
        ax.plot(curve.index, curve["test accuracy"], "o-" if label == reference else "s-", ms=3, label=label)
    if reference in curves:
        ref = curves[reference]["test accuracy"]
        ax.fill_between(ref.index, ref - within, ref, color="0.85",
                        label=f"within {100 * within:g} points of {reference}")
    ax.set(xlabel="budget (epochs; best-validation epoch restored)", ylabel="test accuracy")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# run records side by side
# --------------------------------------------------------------------------------------------
def records_overview(records: Mapping[str, RunRecord]) -> pd.DataFrame:
    """One row per trained model of a run: regime (secure or not), test accuracy with its 95% CI,
    macro F1, best validation epoch, cost, and the gap to plain when plain was trained."""
    rows = {}
    for label, r in records.items():
        s, t = r.summary, r.train
        rows[label] = {"regime": r.regime_label, "train images": t.n_train, "test images": s.n_test,
                       "test accuracy": s.test_accuracy, "95% CI": "{:.1%}–{:.1%}".format(*s.test_accuracy_ci95),
                       "macro F1": s.macro_f1, "best val accuracy": t.best_val_accuracy, "best epoch": t.best_epoch,
                       "epochs": r.epochs, "s/step": t.seconds_per_step, "wall s": t.wall_seconds}
    overview = pd.DataFrame(rows).T
    if "plain" in records:
        overview["gap to plain (points)"] = 100 * (overview["test accuracy"].astype(float)
                                                   - records["plain"].summary.test_accuracy)
    return overview


def comparison_summaries(records: Mapping[str, RunRecord]) -> dict[str, dict]:
    """``{"ours: <label>": summary}`` for :func:`comparison_table` (test summary + best epoch)."""
    import dataclasses

    return {f"ours: {label}": dataclasses.asdict(r.summary) | {"best_val_accuracy": r.train.best_val_accuracy,
                                                               "best_epoch": r.train.best_epoch}
            for label, r in records.items()}
