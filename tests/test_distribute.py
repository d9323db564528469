"""tf.distribute: the strategy helper on two logical CPU devices (in a fresh process, because
they must be configured before TensorFlow initialises) and the batch/learning-rate scaling rule."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppdl_utils.learning.distribute import DistributeError, scale_batch_and_lr, strategy

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    from ppdl_utils.learning.distribute import (DistributeError, configure_logical_cpus, scale_batch_and_lr,
                                                strategy)
    devices = configure_logical_cpus(2)
    import tensorflow as tf
    from ppdl_utils.learning.models import build_small_cnn
    from ppdl_utils.learning.training import train_model

    mirrored = strategy("mirrored")
    recipe = scale_batch_and_lr(4, 1e-3, mirrored.num_replicas_in_sync)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (32, 16, 16), dtype=np.uint8), rng.integers(0, 2, 32)
    with mirrored.scope():
        model = build_small_cnn(16, 2)
        result = train_model(model, {"train": (images[:24], labels[:24]), "val": (images[24:], labels[24:])},
                             epochs=1, lr=recipe.learning_rate, batch_size=recipe.global_batch, verbose=False)
    try:
        configure_logical_cpus(3)
        late = "no error"
    except DistributeError as exc:
        late = str(exc)
    print("RESULT " + json.dumps({
        "devices": devices,
        "replicas": mirrored.num_replicas_in_sync,
        "default_replicas": strategy("none").num_replicas_in_sync,
        "auto_replicas": strategy("auto").num_replicas_in_sync,
        "distributed_variables": all(isinstance(getattr(w, "value", w), tf.distribute.DistributedValues)
                                     for w in model.trainable_weights),
        "global_batch": recipe.global_batch, "lr": recipe.learning_rate,
        "epochs": len(result.history), "loss": float(result.history["loss"].iloc[-1]),
        "steps": result.steps_per_epoch, "late": late}))
""")


def test_mirrored_strategy_trains_on_two_logical_cpus():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    got = json.loads(lines[-1][len("RESULT "):])
    assert len(got["devices"]) == 2 and got["replicas"] == 2
    assert got["default_replicas"] == 1 and got["auto_replicas"] == 2
    assert got["distributed_variables"], "the model's variables are not mirrored across the replicas"
    assert got["global_batch"] == 8 and got["lr"] == pytest.approx(2e-3)
    assert got["epochs"] == 1 and got["steps"] == 3 and math.isfinite(got["loss"])
    assert "already initialised" in got["late"]


@given(per_replica=st.integers(1, 512), replicas=st.integers(1, 64), lr=st.floats(1e-6, 1.0),
       rule=st.sampled_from(["linear", "sqrt", "none"]))
def test_scaling_rule(per_replica, replicas, lr, rule):
    recipe = scale_batch_and_lr(per_replica, lr, replicas, rule=rule)
    assert recipe.global_batch == per_replica * replicas
    factor = {"linear": replicas, "sqrt": math.sqrt(replicas), "none": 1}[rule]
    assert recipe.learning_rate == pytest.approx(lr * factor)
    assert (recipe.warmup_epochs > 0) == (recipe.learning_rate > lr * (1 + 1e-12))
    assert str(recipe.global_batch) in recipe.describe()


def test_scaling_from_a_recipe_tuned_at_another_batch():
    # tuned at batch 256 (the paper's 8 x 32): on one device with batch 32 the rate shrinks 8x
    assert scale_batch_and_lr(32, 8e-3, 1, base_batch=256).learning_rate == pytest.approx(1e-3)
    assert scale_batch_and_lr(32, 8e-3, 1, base_batch=256).warmup_epochs == 0
    assert scale_batch_and_lr(32, 1e-3, 8).global_batch == 256


@pytest.mark.parametrize("kwargs, match", [
    ({"per_replica_batch": 0}, "per_replica_batch"),
    ({"replicas": 2.0}, "replicas"),
    ({"base_lr": float("nan")}, "base_lr"),
    ({"rule": "cubic"}, "rule='cubic'"),
    ({"base_batch": -1}, "base_batch"),
])
def test_bad_scaling_parameters_are_named(kwargs, match):
    args = {"per_replica_batch": 32, "base_lr": 1e-3, "replicas": 2} | kwargs
    with pytest.raises(DistributeError, match=match):
        scale_batch_and_lr(**args)


def test_unknown_strategy_kind_is_named():
    with pytest.raises(DistributeError, match="distribute='tpu'.*mirrored"):
        strategy("tpu")
