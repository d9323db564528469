"""The regime study (ppdl_utils.studies.regimes): each regime parsed and encrypted once, the split kept
image for image, and training through the study equal to training the same model by hand."""
from __future__ import annotations

import numpy as np
import pytest

from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.data.splits import stratified_split
from ppdl_utils.data.synthetic import make_chest_xray_like
from ppdl_utils.errors import PPDLError
from ppdl_utils.learning import models, training
from ppdl_utils.records import load_records
from ppdl_utils.studies import regimes as study


def test_jobs_parse_every_regime_once_and_label_the_input_layer_models():
    jobs = study.jobs(["plain", "table", "randomized"], ["table", "r_one"])
    assert [j.label for j in jobs] == ["plain", "table", "randomized", "table+input_table", "r_one+input_table"]
    assert [j.order for j in jobs] == list(range(5))
    assert jobs[0].regime is None and jobs[0].regime_name == "plain" and jobs[0].regime_label == "plain (no encryption)"
    assert jobs[1].regime is Regime.TABLE and jobs[3].regime is Regime.TABLE and jobs[3].use_table
    assert study.jobs(["r_one"], ["r_one"], table_suffix="+seriation")[1].label == "r_one+seriation"
    with pytest.raises(PPDLError, match="tabel"):
        study.jobs(["plain", "tabel"])


@pytest.fixture(scope="module")
def small_set():
    ds = make_chest_xray_like(n_per_class=12, size=16, seed=3)
    split = stratified_split(ds.labels, ds.hashes, fractions=(0.6, 0.2, 0.2), seed=3)
    return ds, split


def _substitution(calls: list):
    """A stand-in encryptor (a fixed byte substitution per regime), counting its calls."""
    def encrypt(regime, images, idx):
        calls.append((regime, len(idx)))
        table = np.random.default_rng(len(regime.value)).permutation(256).astype(np.uint8)
        return table[images], {"encrypt seconds": 0.0}
    return encrypt


def test_each_regime_is_encrypted_once_and_the_split_follows_the_images(small_set):
    ds, split = small_set
    calls = []
    jobs = study.jobs(["plain", "table", "randomized"], ["table"])
    data, rows = study.encrypt_regimes(ds.images, ds.labels, split, jobs, _substitution(calls), 6, seed=0)
    assert [c[0] for c in calls] == [Regime.TABLE, Regime.RANDOMIZED]
    assert set(data) == {"plain", "table", "randomized"} and [r["regime"] for r in rows] == \
        [Regime.TABLE.label, Regime.RANDOMIZED.label]
    assert data["plain"].images is ds.images and data["plain"].stats == {}
    for part, positions in data["table"].split.items():
        np.testing.assert_array_equal(data["table"].labels[positions], ds.labels[np.sort(split[part])])
    assert data["table"].stats["distinct_values"] >= 1
    assert list(np.bincount(data["randomized"].labels)) == [6] * 4  # capped per class over all parts (of 12)
    # the rendered images are the encryptions of exactly the plain images recorded beside them
    table = np.random.default_rng(len("table")).permutation(256).astype(np.uint8)
    np.testing.assert_array_equal(data["table"].images, table[data["table"].plain])
    np.testing.assert_array_equal(data["table"].plain[data["table"].split["test"]], ds.images[np.sort(split["test"])])


def test_training_through_the_study_equals_training_by_hand(small_set, tmp_path, capsys):
    ds, split = small_set
    jobs = study.jobs(["table"], ["table"], table_suffix="+seriation")
    data, _ = study.encrypt_regimes(ds.images, ds.labels, split, jobs, _substitution([]), None)
    recipe = study.Recipe("small_cnn", 16, len(ds.class_names), input_table_init="seriation", seed=5)
    settings = dict(lr=3e-3, batch_size=8, seed=5, verbose=False)
    _, evaluation = study.train_and_test(jobs[1], data, recipe, 1, settings)

    d = data["table"]  # by hand: what notebook 03 and the bench did before the study existed
    training.set_seed(5)
    from ppdl_utils.learning.input_table import input_table_init
    model = models.build_small_cnn(16, len(ds.class_names), learnable_input_table=True,
                                   input_table_init=input_table_init("seriation", d.images[d.split["train"]]))
    _, by_hand = training.fit_and_test(model, d.images, d.labels, d.split, 1, **settings)
    assert evaluation["accuracy"] == by_hand["accuracy"]
    np.testing.assert_array_equal(evaluation["y_pred"], by_hand["y_pred"])

    provenance = dict(data="SYNTHETIC", image_size=16, epochs=1, architecture="small_cnn", weights=None,
                      bn_momentum=0.9, key_bits=1024, key_fingerprint="f" * 16, renderer="mod256", seed=5,
                      split_seed=5, key_draw=None, quick=True, source_label="SYNTHETIC")
    records = study.train_and_record(jobs[:1], data, recipe, 1, settings, run="studytest",
                                     class_names=list(ds.class_names), provenance=provenance, results_dir=tmp_path)
    saved = load_records(tmp_path, "studytest")
    assert set(saved) == {"table"} and saved["table"].regime == "table" and saved["table"].input_table is None
    assert saved["table"].test_accuracy == records["table"].test_accuracy
    capsys.readouterr()
    kept = study.train_and_record(jobs[:1], data, recipe, 1, settings, run="studytest",
                                  class_names=list(ds.class_names), provenance=provenance, results_dir=tmp_path,
                                  resume=True)
    assert "with these settings: kept" in capsys.readouterr().out  # resumed: the saved model, not a new one
    assert kept["table"].saved == saved["table"].saved
