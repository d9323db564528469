"""Training and evaluation: ``tf.data`` pipelines from uint8 arrays, best-epoch selection, timing.

Pipelines start from ``(N, H, W)`` uint8 grayscale images (plain, or rendered ciphertexts) and
are cached as uint8; the per-batch map repeats the gray channel three times and applies the
MobileNetV2 preprocessing ``x / 127.5 - 1`` (range [-1, 1]).  Models with a learnable input table
(``models.input_kind(model) == "index"``) get the raw pixel values as int32 instead.

:func:`train_model` follows the paper's protocol: train for a fixed number of epochs, keep the
weights of the epoch with the best validation accuracy (the earliest one on ties), restore them,
and only then evaluate on the test part.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import keras  # noqa: E402
import numpy as np
import pandas as pd
import tensorflow as tf  # noqa: E402

from ppdl_utils.errors import ImageFormatError  # noqa: E402
from ppdl_utils.learning import models as _models  # sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads
from ppdl_utils.learning.hyperparameters import TrainingParameterError, check_epochs, check_rate
from ppdl_utils.records import EvaluationSummary, RunRecord, TrainSummary  # noqa: E402

__all__ = ["set_seed", "preprocess_batch", "make_dataset", "BestWeights", "StepTimer", "TrainResult",
           "train_model", "predict", "evaluate", "fit_and_test", "fit_arrays", "run_record", "cap_split",
           "WarmupSchedule"]


def set_seed(seed: int, deterministic_ops: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) and, by default, ask
    TensorFlow for deterministic kernels (``tf.config.experimental.enable_op_determinism``, which
    stays on for the rest of the process).

    Call it before building a model: the same seed then gives the same initial weights, dropout
    masks and shuffling order, and a rerun the same history."""
    keras.utils.set_random_seed(int(seed))
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()


def _check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.dtype != np.uint8:
        raise ImageFormatError(f"{name} must be a (N, H, W) uint8 array, got shape {arr.shape} dtype {arr.dtype}")
    return arr


def preprocess_batch(images: tf.Tensor, kind: str = _models.RGB_INPUT) -> tf.Tensor:
    """uint8 ``(..., H, W)`` -> float32 ``(..., H, W, 3)`` in [-1, 1] (``kind="rgb"``) or the raw
    pixel values as int32 ``(..., H, W)`` (``kind="index"``)."""
    if kind == _models.INDEX_INPUT:
        return tf.cast(images, tf.int32)
    if kind != _models.RGB_INPUT:
        raise ValueError(f"unknown input kind {kind!r}; expected 'rgb' or 'index'")
    x = tf.cast(images, tf.float32) / 127.5 - 1.0
    return tf.repeat(x[..., None], 3, axis=-1)


def make_dataset(images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 32,
                 shuffle: bool = False, seed: int = 0, kind: str = _models.RGB_INPUT,
                 cache: bool = True) -> tf.data.Dataset:
    """A batched, prefetched ``tf.data`` pipeline over uint8 images (and labels).

    Cached as uint8 (before preprocessing, so memory stays at one byte per pixel); shuffled each
    epoch with `seed` when `shuffle`; preprocessing runs per batch."""
    images = _check_images(images)
    parts = images if labels is None else (images, np.asarray(labels, dtype=np.int32))
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if labels is None:
        ds = ds.map(lambda x: preprocess_batch(x, kind), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda x, y: (preprocess_batch(x, kind), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


TEST_MONITOR = "test_accuracy_monitor"


class BestWeights(keras.callbacks.Callback):
    """Remember the weights of the epoch with the best `monitor` (earliest on ties) and put them
    back into the model at the end of training."""

    def __init__(self, monitor: str = "val_accuracy", mode: str = "max") -> None:
        super().__init__()
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.best_epoch: int | None = None  # 1-based
        self.best_weights: list[np.ndarray] | None = None

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"BestWeights monitors {self.monitor!r} but the logs only have {sorted(logs or {})}; "
                           "pass validation data")
        if self._better(float(value)):
            self.best, self.best_epoch = float(value), epoch + 1
            self.best_weights = [np.array(w, copy=True) for w in self.model.get_weights()]

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training step (batch) and of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.step_seconds: list[float] = []
        self.epoch_seconds: list[float] = []
        self._t_step = self._t_epoch = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t_epoch = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._t_epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self._t_step = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.step_seconds.append(time.perf_counter() - self._t_step)


class TestAccuracyMonitor(keras.callbacks.Callback):
    """Record the test accuracy after every epoch as the ``test_accuracy_monitor`` history column.

    A diagnostic only: it never feeds selection (that stays on validation accuracy). With a constant
    learning rate, epochs 1..E of a long run *are* the run with budget E, so one long run gives the
    test accuracy of every shorter budget (:func:`budget_curve`)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> None:
        super().__init__()
        self.images, self.labels, self.batch_size = images, np.asarray(labels).astype(int), batch_size

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and len(self.labels):
            logs[TEST_MONITOR] = float((predict(self.model, self.images, self.batch_size).argmax(axis=1)
                                        == self.labels).mean())


class _ProgressLine(keras.callbacks.Callback):
    """One printed line per epoch (notebook-friendly; keras' own bar floods papermill logs)."""

    def __init__(self, label: str, epochs: int) -> None:
        super().__init__()
        self.label, self.epochs = label, epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(f"[{self.label}] epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f} "
              f"acc {logs.get('accuracy', float('nan')):.4f}  val_loss {logs.get('val_loss', float('nan')):.4f} "
              f"val_acc {logs.get('val_accuracy', float('nan')):.4f}", flush=True)


@dataclass
class TrainResult:
    """What :func:`train_model` returns.

    ``history``: one row per epoch (``epoch`` 1-based, ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``, ``seconds``); ``best_epoch``/``best_val_accuracy``: the epoch whose
    weights the model holds afterwards; ``seconds_per_step``: median wall time of a training step
    after the first (which includes tracing; see ``first_step_seconds``)."""

    history: pd.DataFrame
    best_epoch: int
    best_val_accuracy: float
    seconds_per_step: float
    first_step_seconds: float
    wall_seconds: float
    steps_per_epoch: int
    batch_size: int
    n_train: int
    n_val: int
    settings: dict = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.batch_size / self.seconds_per_step if self.seconds_per_step else float("nan")

    def summary(self) -> dict:
        return {"best_epoch": self.best_epoch, "best_val_accuracy": self.best_val_accuracy,
                "seconds_per_step": self.seconds_per_step, "first_step_seconds": self.first_step_seconds,
                "images_per_second": self.images_per_second, "wall_seconds": self.wall_seconds,
                "steps_per_epoch": self.steps_per_epoch, "batch_size": self.batch_size,
                "n_train": self.n_train, "n_val": self.n_val, **self.settings}


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from lr/warmup_steps to `lr`, then constant or cosine decay to lr/100."""

    def __init__(self, lr: float, warmup_steps: int, total_steps: int, cosine: bool = False) -> None:
        self.lr, self.warmup_steps = float(lr), int(warmup_steps)
        self.total_steps, self.cosine = int(total_steps), bool(cosine)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        lr = self.lr
        if self.cosine:
            span = max(1, self.total_steps - self.warmup_steps)
            progress = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            lr = self.lr * (0.01 + 0.99 * 0.5 * (1.0 + keras.ops.cos(math.pi * progress)))
        if self.warmup_steps:
            lr = keras.ops.minimum(lr, self.lr * (step + 1.0) / self.warmup_steps)
        return lr

    def get_config(self) -> dict:
        return {"lr": self.lr, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "cosine": self.cosine}


def _lr_schedule(lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float, schedule: str):
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown lr schedule {schedule!r}; expected 'constant' or 'cosine'")
    warmup = int(round(warmup_epochs * steps_per_epoch))
    if schedule == "constant" and warmup == 0:
        return float(lr)
    return WarmupSchedule(lr, warmup, epochs * steps_per_epoch, cosine=schedule == "cosine")


def train_model(model: keras.Model, data: dict, epochs: int, lr: float = 5e-4, batch_size: int = 32,
                seed: int = 0, warmup_epochs: float = 0.0, schedule: str = "constant",
                weight_decay: float = 0.0, label_smoothing: float = 0.0, label: str = "",
                verbose: bool = True, callbacks: list | None = None) -> TrainResult:
    """Train `model` (Adam on sparse categorical cross-entropy) and restore the best epoch.

    Args:
        model: an uncompiled model from :mod:`ppdl_utils.learning.models` (its input kind picks the pipeline).
        data: ``{"train": (images, labels), "val": (images, labels)}`` with uint8 ``(N, H, W)`` images.
        epochs: number of epochs; the weights of the epoch with the best validation accuracy
            (the earliest on ties) are restored before returning.
        lr: Adam learning rate (AdamW when `weight_decay` > 0).
        warmup_epochs: linear warm-up from ~0 to `lr` over this many epochs.
        schedule: ``"constant"`` or ``"cosine"`` decay after the warm-up.
        seed: seeds initial weights, dropout and shuffling (``keras.utils.set_random_seed``).
        label: a name for the printed per-epoch lines.
    """
    if not isinstance(data, dict) or "train" not in data or "val" not in data:
        raise TrainingParameterError(f"data must be a dict with 'train' and 'val' parts, got {type(data).__name__}")
    epochs, lr = check_epochs(epochs), check_rate(lr, "lr")
    batch_size = check_epochs(batch_size, "batch_size")
    check_rate(warmup_epochs, "warmup_epochs", allow_zero=True, maximum=1e4)
    set_seed(seed)
    kind = _models.input_kind(model)
    x_train, y_train = data["train"]
    x_val, y_val = data["val"]
    train_ds = make_dataset(x_train, y_train, batch_size, shuffle=True, seed=seed, kind=kind)
    val_ds = make_dataset(x_val, y_val, batch_size, kind=kind)
    steps = math.ceil(len(x_train) / batch_size)
    rate = _lr_schedule(lr, epochs, steps, warmup_epochs, schedule)
    if weight_decay:
        optimizer = keras.optimizers.AdamW(learning_rate=rate, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=rate)
    loss = keras.losses.SparseCategoricalCrossentropy()
    if label_smoothing:
        n_classes = int(model.outputs[0].shape[-1])
        base_loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
        def loss(y_true, y_pred):  # noqa: E306
            return base_loss(keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"),
                                               n_classes), y_pred)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    best, timer = BestWeights(), StepTimer()
    cbs = [timer, best, *(callbacks or [])]
    if verbose:
        cbs.append(_ProgressLine(label or model.name, epochs))
    start = time.perf_counter()
    fit = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, callbacks=cbs, shuffle=False)
    wall = time.perf_counter() - start
    history = pd.DataFrame(fit.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    history["seconds"] = timer.epoch_seconds[:len(history)]
    steps_after_first = timer.step_seconds[1:] or timer.step_seconds
    settings = {"epochs": epochs, "lr": lr, "warmup_epochs": warmup_epochs, "schedule": schedule,
                "weight_decay": weight_decay, "label_smoothing": label_smoothing, "seed": seed,
                "input_kind": kind, "model": model.name, "parameters": int(model.count_params())}
    return TrainResult(history=history, best_epoch=int(best.best_epoch), best_val_accuracy=float(best.best),
                       seconds_per_step=float(np.median(steps_after_first)),
                       first_step_seconds=float(timer.step_seconds[0]), wall_seconds=wall,
                       steps_per_epoch=steps, batch_size=batch_size, n_train=len(x_train), n_val=len(x_val),
                       settings=settings)


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` for uint8 images."""
    ds = make_dataset(images, None, batch_size, kind=_models.input_kind(model), cache=False)
    return np.asarray(model.predict(ds, verbose=0))


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> dict:
    """Test accuracy and the per-image predictions: ``{"accuracy", "y_true", "y_pred", "proba"}``."""
    proba = predict(model, images, batch_size)
    y_pred = proba.argmax(axis=1)
    y_true = np.asarray(labels).astype(int)
    return {"accuracy": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
            "y_true": y_true, "y_pred": y_pred, "proba": proba}


def fit_and_test(model: keras.Model, images: np.ndarray, labels: np.ndarray, split: dict, epochs: int,
                 monitor_test: bool = False, **train_kwargs) -> tuple[TrainResult, dict]:
    """:func:`train_model` on ``split["train"]``/``split["val"]`` of `images`, then :func:`evaluate`
    the restored best-epoch model on ``split["test"]`` (which took no part in training or selection).
    `monitor_test` adds the per-epoch test accuracy to the history (:class:`TestAccuracyMonitor`)."""
    labels = np.asarray(labels)
    data = {part: (images[split[part]], labels[split[part]]) for part in ("train", "val")}
    if monitor_test:
        monitor = TestAccuracyMonitor(images[split["test"]], labels[split["test"]])
        train_kwargs["callbacks"] = [*(train_kwargs.get("callbacks") or []), monitor]
    result = train_model(model, data, epochs, **train_kwargs)
    evaluation = evaluate(model, images[split["test"]], labels[split["test"]],
                          batch_size=max(32, train_kwargs.get("batch_size", 32)))
    evaluation["test_indices"] = np.asarray(split["test"])
    return result, evaluation


def cap_split(split: dict, labels: np.ndarray, max_per_class: int | None, seed: int = 0) -> dict:
    """A sub-split with at most `max_per_class` images of each class in all parts together.

    Each part keeps its share of the class (largest remainder, at least one image per non-empty
    part); the images kept are drawn at random with `seed`.  Used for the randomized regime,
    whose encryption costs seconds per image."""
    if max_per_class is None:
        return {k: np.asarray(v) for k, v in split.items()}
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = {k: [] for k in split}
    for c in np.unique(labels):
        members = {k: np.asarray(v)[labels[np.asarray(v)] == c] for k, v in split.items()}
        sizes = np.array([len(m) for m in members.values()])
        total = int(sizes.sum())
        if total <= max_per_class:
            keep = sizes
        else:
            raw = max_per_class * sizes / total
            keep = np.floor(raw).astype(int)
            keep[(sizes > 0) & (keep == 0)] = 1
            for i in np.argsort(-(raw - keep), kind="stable"):
                if keep.sum() >= max_per_class:
                    break
                if keep[i] < sizes[i]:
                    keep[i] += 1
        for (part, idx), k in zip(members.items(), keep):
            out[part].append(rng.choice(idx, size=int(k), replace=False) if k < len(idx) else idx)
    return {k: np.sort(np.concatenate(v)).astype(np.int64) if v else np.empty(0, np.int64)
            for k, v in out.items()}


def budget_curve(history: pd.DataFrame) -> pd.DataFrame:
    """For every budget E (1..len(history)): the epoch a run of E epochs restores (best validation
    accuracy among epochs 1..E, earliest on ties, as :class:`BestWeights`) and its test accuracy.

    Needs the ``test_accuracy_monitor`` column (``fit_and_test(..., monitor_test=True)``) and a run
    whose first E epochs equal an E-epoch run: a constant learning rate (a cosine schedule depends on
    the total)."""
    if TEST_MONITOR not in history:
        raise KeyError(f"history has no {TEST_MONITOR!r} column; train with fit_and_test(..., monitor_test=True)")
    val = history["val_accuracy"].to_numpy(dtype=float)
    rows = []
    for budget in range(1, len(history) + 1):
        best = int(np.argmax(val[:budget]))  # first maximum, as BestWeights keeps the earliest on ties
        rows.append({"epochs": budget, "restored epoch": int(history["epoch"].iloc[best]),
                     "best val accuracy": val[best], "test accuracy": float(history[TEST_MONITOR].iloc[best])})
    return pd.DataFrame(rows).set_index("epochs")


def predict_arrays(model: keras.Model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class predictions by direct (eager) calls: no traced predict function to build per model."""
    scores = [np.asarray(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.argmax(np.concatenate(scores), axis=1) if scores else np.empty(0, dtype=np.int64)


def fit_arrays(model: keras.Model, x: np.ndarray, labels: np.ndarray, split: dict, epochs: int,
               lr: float = 1e-3, batch_size: int = 32) -> tuple[BestWeights, np.ndarray]:
    """Train `model` on float arrays (features, standardized images) with the same best-epoch rule
    as :func:`train_model` (:class:`BestWeights` on validation accuracy, earliest on ties, 1-based),
    then predict the test part.  Returns (the callback: ``best_epoch``, ``best``; test predictions).
    Seed (:func:`set_seed`) before building the model: the seed then fixes weights, dropout and order."""
    epochs, lr = check_epochs(epochs), check_rate(lr, "lr")
    batch_size = check_epochs(batch_size, "batch_size")
    tr, va, te = (np.asarray(split[k]) for k in ("train", "val", "test"))
    # XLA ("auto" in Keras 3) compiles for seconds and then runs slower on a small CPU: off.
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=False)
    best = BestWeights()
    model.fit(x[tr], labels[tr], validation_data=(x[va], labels[va]), epochs=epochs, batch_size=batch_size,
              shuffle=True, verbose=0, callbacks=[best])
    return best, predict_arrays(model, x[te])


def run_record(result: TrainResult, evaluation: dict, *, run: str, label: str, regime: str, regime_label: str,
               class_names: list[str], order: int = 0, **provenance) -> RunRecord:
    """The :class:`~ppdl_utils.records.RunRecord` of one model trained by :func:`fit_and_test`:
    its test summary, training summary, history and per-image predictions, plus `provenance`
    (data, image_size, epochs, architecture, weights, key_bits, key_fingerprint, renderer, seed,
    quick, input_table, key_draw, split_seed, cipher_stats, split_counts, settings...)."""
    y_true = np.asarray(evaluation["y_true"]).astype(int)
    y_pred = np.asarray(evaluation["y_pred"]).astype(int)
    predictions = pd.DataFrame({"y_true": y_true, "y_pred": y_pred})
    proba = np.asarray(evaluation.get("proba", np.empty((len(y_true), 0))))
    for k, name in enumerate(class_names[:proba.shape[1]] if proba.ndim == 2 else []):
        predictions[f"p_{name}"] = proba[:, k].round(6)
    summary = result.summary()
    train = TrainSummary(**{k: summary.pop(k) for k in ("best_epoch", "best_val_accuracy", "n_train", "n_val",
                                                       "seconds_per_step", "first_step_seconds",
                                                       "images_per_second", "wall_seconds", "steps_per_epoch",
                                                       "batch_size")}, extra=summary)
    return RunRecord(run=run, label=label, regime=regime, regime_label=regime_label, class_names=list(class_names),
                     summary=EvaluationSummary.from_predictions(y_true, y_pred, class_names), train=train,
                     order=order, history=result.history, predictions=predictions, **provenance)
