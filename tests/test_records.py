"""The run record: what notebook 03 writes is what notebooks 04, 06 and 08 read, field by field."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from ppdl_utils.config import run_name
from ppdl_utils.records import EvaluationSummary, RecordError, RunRecord, TrainSummary, finished_record, load_records

NAMES = ["COVID", "Normal", "Viral Pneumonia"]


def make_record(run: str = "synthetic", label: str = "table", seed: int = 0, order: int = 0) -> RunRecord:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, 3, 60))
    history = pd.DataFrame({"epoch": [1, 2], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7],
                            "loss": [1.0, 0.5], "val_loss": [1.1, 0.6]})
    return RunRecord(run=run, label=label, regime=label.split("+")[0],
                     regime_label=f"{label} (deterministic, NOT secure)",
                     class_names=NAMES, summary=EvaluationSummary.from_predictions(y_true, y_pred, NAMES),
                     train=TrainSummary(best_epoch=2, best_val_accuracy=0.7, n_train=100, n_val=20,
                                        seconds_per_step=0.1, first_step_seconds=1.5, images_per_second=320.0,
                                        wall_seconds=9.0, steps_per_epoch=4, batch_size=32,
                                        extra={"model": "small_cnn"}),
                     image_size=32, epochs=2, key_draw=1, split_seed=3, order=order,
                     cipher_stats={"distinct_values": 160.0}, settings={"lr": 1e-3, "n": np.int64(3)},
                     history=history, predictions=pd.DataFrame({"y_true": y_true, "y_pred": y_pred}))


def test_summary_matches_scikit_learn():
    record = make_record()
    y_true, y_pred = record.predictions["y_true"], record.predictions["y_pred"]
    assert record.summary.test_accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert record.summary.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    low, high = record.summary.test_accuracy_ci95
    assert low < record.summary.test_accuracy < high and record.summary.n_test == 60


def test_save_load_round_trip(tmp_path):
    record = make_record()
    paths = record.save(tmp_path)
    assert paths["json"] == tmp_path / "synthetic" / "03_table.json" and paths["history"].is_file()
    back = RunRecord.load(paths["json"])
    assert back.to_json() == json.loads(paths["json"].read_text())
    assert back.summary == record.summary and back.train == record.train
    assert (back.key_draw, back.split_seed, back.cipher_stats) == (1, 3, {"distinct_values": 160.0})
    assert back.predictions["y_pred"].tolist() == record.predictions["y_pred"].tolist()
    assert "numpy" in back.versions and back.saved
    assert not list(tmp_path.rglob(".*.tmp")), "atomic writes leave no temp file"


def test_load_records_takes_one_run_in_training_order(tmp_path):
    make_record("synthetic_quick", "plain").save(tmp_path)
    make_record("synthetic", "table", order=1).save(tmp_path)
    make_record("synthetic", "plain", order=0).save(tmp_path)
    records = load_records(tmp_path, "synthetic")
    assert list(records) == ["plain", "table"]
    assert list(load_records(tmp_path, "synthetic_quick")) == ["plain"]
    with pytest.raises(RecordError, match="03_training"):
        load_records(tmp_path, "covid19_radiography_2class")


def test_a_finished_model_is_kept_only_under_the_same_provenance_and_settings(tmp_path):
    make_record().save(tmp_path)
    same = {"image_size": 32, "epochs": 2, "key_draw": 1, "split_seed": 3, "data": "SYNTHETIC"}
    kept = finished_record(tmp_path, "synthetic", "table", same, {"lr": 1e-3})
    assert kept is not None and kept.test_accuracy == make_record().test_accuracy
    assert finished_record(tmp_path, "synthetic", "plain", same) is None  # never trained
    assert finished_record(tmp_path, "synthetic_quick", "table", same) is None  # another run
    for changed in ({"split_seed": 4}, {"key_draw": 2}, {"epochs": 3}, {"key_fingerprint": "00ff"}):
        assert finished_record(tmp_path, "synthetic", "table", {**same, **changed}) is None, changed
    assert finished_record(tmp_path, "synthetic", "table", same, {"lr": 5e-4}) is None
    (tmp_path / "synthetic" / "03_table_history.csv").unlink()  # a half-written record is trained again
    assert finished_record(tmp_path, "synthetic", "table", same) is None


def test_old_records_load(tmp_path):
    """Records written before the dataclass existed (results/ holds many) load unchanged."""
    old = {"run": "x", "label": "fixed_r+input_table", "class_names": ["a", "b"],
           "summary": {"test_accuracy": 0.9, "test_accuracy_ci95": [0.8, 0.95], "macro_f1": 0.9, "weighted_f1": 0.9,
                       "n_test": 200, "classes": 2, "f1": {"a": 0.9, "b": 0.9}},
           "train": {"best_epoch": 3, "best_val_accuracy": 0.9, "n_train": 1600, "n_val": 200, "lr": 5e-4},
           "regime": "fixed_r", "lr": 5e-4, "load_average": [1, 1, 1], "something_new": 1}
    (tmp_path / "03_x_fixed_r+input_table.json").write_text(json.dumps(old))
    record = RunRecord.load(tmp_path / "03_x_fixed_r+input_table.json", with_tables=False)
    assert record.regime == "fixed_r" and record.train.extra == {"lr": 5e-4}
    assert record.settings["lr"] == 5e-4 and record.extra == {"something_new": 1}


@given(st.sampled_from(["run", "label", "class_names", "summary", "train"]))
def test_a_missing_field_is_named(tmp_path_factory, field):
    body = make_record().to_json()
    del body[field]
    path = tmp_path_factory.mktemp("r") / "03_synthetic_table.json"
    path.write_text(json.dumps(body))
    with pytest.raises(RecordError, match=f"{field}"):
        RunRecord.load(path, with_tables=False)


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", '{"run": "x", "label": "y", "class_names": [], '
                                  '"summary": {"test_accuracy": 1}, "train": {}}'])
def test_malformed_records_are_errors_naming_the_file(tmp_path, text):
    path = tmp_path / "03_bad.json"
    path.write_text(text)
    with pytest.raises(RecordError, match="03_bad.json"):
        RunRecord.load(path, with_tables=False)


def test_run_names_carry_source_and_quick_flag():
    assert run_name(None) == "synthetic" and run_name(None, quick=True) == "synthetic_quick"
    assert run_name("/x/covid19_radiography_2class/", True) == "covid19_radiography_2class_quick"
    assert run_name("/x/pneumoniamnist.npz", suffix="_draw2") == "pneumoniamnist_draw2"
