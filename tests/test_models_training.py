"""Models and training: a one-epoch smoke test, best-epoch restore, BN momentum, weights errors,
the learnable input table, the pipelines."""
from __future__ import annotations

import numpy as np
import pytest

from ppdl_utils.config import WeightsError, resolve_weights
from ppdl_utils.learning import input_table, models, training

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras + numpy 2 __array__ notice


def _data(n=48, size=16, seed=0, n_classes=2):
    """Images whose class is their mean brightness (learnable in an epoch or two)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    base = 60 + 120 * labels[:, None, None] / max(1, n_classes - 1)
    images = np.clip(base + rng.normal(0, 20, size=(n, size, size)), 0, 255).astype(np.uint8)
    return images, labels


def test_pipeline_preprocessing():
    images, labels = _data(n=5, size=8)
    x, y = next(iter(training.make_dataset(images, labels, batch_size=5)))
    assert x.shape == (5, 8, 8, 3) and x.dtype.name == "float32"
    np.testing.assert_allclose(x.numpy()[..., 1], images / 127.5 - 1, atol=1e-6)
    assert float(x.numpy().min()) >= -1 and float(x.numpy().max()) <= 1
    np.testing.assert_array_equal(y.numpy(), labels)
    xi = next(iter(training.make_dataset(images, None, batch_size=5, kind="index")))
    assert xi.dtype.name == "int32" and xi.shape == (5, 8, 8)
    np.testing.assert_array_equal(xi.numpy(), images)
    with pytest.raises(Exception, match="uint8"):
        training.make_dataset(images.astype(np.float32), labels)
    # shuffling with a seed is repeatable and is a permutation
    a = np.concatenate([b.numpy() for _, b in training.make_dataset(images, labels, 2, shuffle=True, seed=1)])
    b = np.concatenate([b.numpy() for _, b in training.make_dataset(images, labels, 2, shuffle=True, seed=1)])
    np.testing.assert_array_equal(a, b)
    assert sorted(a) == sorted(labels)


def test_one_epoch_smoke():
    images, labels = _data()
    data = {"train": (images[:32], labels[:32]), "val": (images[32:], labels[32:])}
    model = models.build_small_cnn(16, 2)
    result = training.train_model(model, data, epochs=1, lr=1e-2, batch_size=16, seed=0, verbose=False)
    assert list(result.history.columns[:5]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"] or \
        {"epoch", "accuracy", "loss", "val_accuracy", "val_loss", "seconds"} <= set(result.history.columns)
    assert len(result.history) == 1 and result.best_epoch == 1 and result.steps_per_epoch == 2
    assert result.seconds_per_step > 0 and result.wall_seconds > 0 and result.images_per_second > 0
    ev = training.evaluate(model, images[32:], labels[32:])
    assert ev["proba"].shape == (16, 2) and 0 <= ev["accuracy"] <= 1
    np.testing.assert_allclose(ev["proba"].sum(axis=1), 1, rtol=1e-5)


def test_best_weights_callback_restores_best_epoch():
    model = models.build_small_cnn(8, 2)
    cb = training.BestWeights()
    cb.set_model(model)
    snapshots = []
    for epoch, val in enumerate([0.5, 0.9, 0.7, 0.9, 0.6]):  # best 0.9 first at epoch 2; tie at 4 ignored
        weights = [np.full_like(w, epoch) for w in model.get_weights()]
        model.set_weights(weights)
        snapshots.append(weights)
        cb.on_epoch_end(epoch, {"val_accuracy": val})
    cb.on_train_end()
    assert cb.best_epoch == 2 and cb.best == 0.9
    for got, want in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(KeyError, match="val_accuracy"):
        cb.on_epoch_end(5, {"accuracy": 1.0})


def test_train_model_keeps_the_best_epoch_weights():
    import keras

    rng = np.random.default_rng(1)
    images, _ = _data(n=40, size=8, seed=1)
    labels = rng.integers(0, 2, size=40)  # random labels: noisy validation accuracy
    data = {"train": (images[:30], labels[:30]), "val": (images[30:], labels[30:])}

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights = []

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append([np.array(w) for w in self.model.get_weights()])

    record = Record()
    model = models.build_small_cnn(8, 2, width=4)
    result = training.train_model(model, data, epochs=4, lr=0.05, batch_size=10, seed=3, verbose=False,
                                  callbacks=[record])
    val = result.history["val_accuracy"].to_numpy()
    assert result.best_epoch == int(np.argmax(val)) + 1  # earliest maximum
    assert result.best_val_accuracy == pytest.approx(val.max())
    for got, want in zip(model.get_weights(), record.weights[result.best_epoch - 1]):
        np.testing.assert_array_equal(got, want)
    assert training.evaluate(model, *data["val"])["accuracy"] == pytest.approx(val.max())


def test_mobilenetv2_bn_momentum_and_head():
    model = models.build_mobilenetv2(32, 3, alpha=0.35, bn_momentum=0.9, dropout=0.3)
    momenta = models.bn_momenta(model)
    assert len(momenta) >= 50 and set(momenta) == {0.9}
    assert model.output_shape == (None, 3) and models.input_kind(model) == "rgb"
    names = [layer.name for layer in model.layers]
    assert names[-3:] == ["avg_pool", "dropout", "predictions"]
    assert model.get_layer("dropout").rate == 0.3
    assert models.set_bn_momentum(model, 0.5) == len(momenta) and set(models.bn_momenta(model)) == {0.5}
    with pytest.raises(ValueError):
        models.set_bn_momentum(model, 1.0)


def test_weights_errors_name_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "weights.weights.h5"
    with pytest.raises(WeightsError, match=str(missing)):
        models.build_mobilenetv2(32, 2, weights=str(missing), alpha=0.35)
    wrong = tmp_path / "small.weights.h5"
    models.build_small_cnn(32, 2).save_weights(str(wrong))
    with pytest.raises(WeightsError, match=str(wrong)):
        models.build_mobilenetv2(32, 2, weights=str(wrong), alpha=0.35)
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(WeightsError, match=str(junk)):
        models.build_mobilenetv2(32, 2, weights=str(junk), alpha=0.35)


@pytest.mark.skipif(resolve_weights("default") is None, reason="shared ImageNet weights file not on this machine")
def test_shared_imagenet_weights_load_at_another_size():
    import keras

    model = models.build_mobilenetv2(96, 2, weights=resolve_weights("default"))
    reference = models.build_mobilenetv2(96, 2, weights=None)
    conv = [w for w in model.weights if "Conv1" in w.path and "kernel" in w.path][0]
    ref = [w for w in reference.weights if "Conv1" in w.path and "kernel" in w.path][0]
    assert conv.shape == (3, 3, 3, 32) and not np.allclose(keras.ops.convert_to_numpy(conv.value),
                                                           keras.ops.convert_to_numpy(ref.value))


def test_learnable_input_table():
    images, labels = _data(n=32, size=16)
    plain = models.build_small_cnn(16, 2)
    table = models.build_small_cnn(16, 2, learnable_input_table=True)
    assert models.input_kind(table) == "index" and models.input_kind(plain) == "rgb"
    embedding = table.get_layer("pixel_table")
    np.testing.assert_allclose(embedding.get_weights()[0], input_table.identity_table())
    assert embedding.get_weights()[0].shape == (256, 3)
    # initialised to the usual scaling, the table model computes what the plain model computes
    table.set_weights([embedding.get_weights()[0], *plain.get_weights()])
    np.testing.assert_allclose(training.predict(table, images), training.predict(plain, images), atol=1e-5)
    # and the table is trained: it can learn to undo a substitution of the 256 gray levels
    substitution = np.random.default_rng(0).permutation(256).astype(np.uint8)
    data = {"train": (substitution[images], labels), "val": (substitution[images[:8]], labels[:8])}
    training.train_model(table, data, epochs=1, lr=1e-2, batch_size=16, verbose=False)
    assert not np.allclose(embedding.get_weights()[0], input_table.identity_table())
    mobile = models.build_mobilenetv2(32, 2, alpha=0.35, learnable_input_table=True)
    assert models.input_kind(mobile) == "index" and mobile.get_layer("pixel_table").input_dim == 256


def test_input_table_initialisations():
    levels = np.arange(256)[::-1]
    table = input_table.table_from_gray_levels(levels)
    assert table.shape == (256, 3) and table[0, 0] == pytest.approx(1.0) and table[255, 2] == pytest.approx(-1.0)
    partial = input_table.table_from_gray_levels({3: 255})
    assert partial[3, 0] == pytest.approx(1.0) and partial[4, 0] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        input_table.table_from_gray_levels(np.arange(10))
    # a ciphertext-only estimate of the inverse of a substitution of smooth images
    yy, xx = np.mgrid[0:32, 0:32]
    plain = np.stack([(xx + yy + 4 * k) * 255 // 82 for k in range(6)]).astype(np.uint8)  # smooth ramps
    substitution = np.random.default_rng(1).permutation(256).astype(np.uint8)
    estimate = input_table.seriation_table(substitution[plain])
    recovered = estimate[substitution[plain], 0]
    import pandas as pd

    rank_corr = pd.Series(recovered.ravel()).corr(pd.Series(plain.ravel().astype(float)), method="spearman")
    assert abs(rank_corr) > 0.9  # the gray-level order is recovered (up to reversal)
    model = models.build_small_cnn(32, 2, learnable_input_table=True, input_table_init=estimate)
    np.testing.assert_allclose(model.get_layer("pixel_table").get_weights()[0], estimate)
    with pytest.raises(ValueError):
        models.build_small_cnn(32, 2, learnable_input_table=True, input_table_init=np.zeros((256, 1)))


def test_same_seed_same_history():
    images, labels = _data(n=32, size=8, seed=2)
    data = {"train": (images[:24], labels[:24]), "val": (images[24:], labels[24:])}
    runs = []
    for _ in range(2):
        training.set_seed(7)
        model = models.build_small_cnn(8, 2, width=4)
        result = training.train_model(model, data, epochs=2, lr=1e-2, batch_size=8, seed=7, verbose=False)
        runs.append((result.history[["loss", "val_loss"]].to_numpy(), model.get_weights()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_test_accuracy_monitor_matches_the_restored_model_and_leaves_training_unchanged():
    rng = np.random.default_rng(2)
    images, _ = _data(n=60, size=8, seed=2)
    labels = rng.integers(0, 2, size=60)  # noisy labels: accuracies move from epoch to epoch
    split = {"train": np.arange(40), "val": np.arange(40, 50), "test": np.arange(50, 60)}
    kwargs = dict(lr=0.05, batch_size=10, seed=3, verbose=False)
    training.set_seed(3)  # the same initial weights for both models
    plain_run, _ = training.fit_and_test(models.build_small_cnn(8, 2, width=4), images, labels, split, 4, **kwargs)
    training.set_seed(3)
    model = models.build_small_cnn(8, 2, width=4)
    result, evaluation = training.fit_and_test(model, images, labels, split, 4, monitor_test=True, **kwargs)
    monitored = result.history[training.TEST_MONITOR]
    assert len(monitored) == 4 and monitored.between(0, 1).all()
    # the restored (best-validation) model's test accuracy is the monitor's value at that epoch
    assert evaluation["accuracy"] == pytest.approx(monitored.iloc[result.best_epoch - 1])
    # monitoring only reads the model: the training is the same as without it
    np.testing.assert_allclose(result.history["val_accuracy"], plain_run.history["val_accuracy"])
    np.testing.assert_allclose(result.history["loss"], plain_run.history["loss"], rtol=1e-5)


def test_budget_curve_follows_the_best_validation_epoch():
    import pandas as pd

    history = pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "val_accuracy": [0.6, 0.8, 0.7, 0.8, 0.9],
                            training.TEST_MONITOR: [0.55, 0.75, 0.95, 0.70, 0.85]})
    curve = training.budget_curve(history)
    assert curve["restored epoch"].tolist() == [1, 2, 2, 2, 5]  # the tie at epoch 4 keeps epoch 2
    assert curve["test accuracy"].tolist() == [0.55, 0.75, 0.75, 0.75, 0.85]
    assert 0.95 not in curve["test accuracy"].tolist()  # epoch 3 is never the one restored
    with pytest.raises(KeyError, match="monitor_test=True"):
        training.budget_curve(history.drop(columns=training.TEST_MONITOR))


def test_oracle_table_averages_merged_gray_levels():
    plain = np.array([[0, 10, 20], [10, 200, 0]], dtype=np.uint8)
    substitution = np.zeros(256, dtype=np.uint8)
    substitution[[0, 10, 20, 200]] = [7, 7, 9, 9]  # 0 and 10 merge, 20 and 200 merge
    cipher = substitution[plain]
    table = input_table.oracle_table(plain, cipher)
    gray = (table[:, 0] + 1) * 127.5
    # frequency-weighted: symbol 7 covers 0, 0, 10, 10; symbol 9 covers 20 and 200
    np.testing.assert_allclose(gray[[7, 9]], [5.0, 110.0], atol=1e-4)
    np.testing.assert_allclose(np.delete(gray, [7, 9]), 127.5, atol=1e-4)
    assert table.shape == (256, 3) and np.all(table[:, 0] == table[:, 2])
    np.testing.assert_allclose(input_table.input_table_init("oracle", cipher, plain), table)
    np.testing.assert_allclose(input_table.input_table_init("identity", cipher), input_table.identity_table())
    with pytest.raises(ValueError, match="plain training images"):
        input_table.input_table_init("oracle", cipher)
    with pytest.raises(ValueError, match="unknown input_table_init 'magic'"):
        input_table.input_table_init("magic", cipher)
    with pytest.raises(ValueError, match="differ in size"):
        input_table.oracle_table(plain, cipher[:1])
