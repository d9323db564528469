"""Data-parallel training with ``tf.distribute``: one helper picks the strategy, one scales the
batch size and learning rate with the number of replicas.

On a multi-GPU machine ``strategy("mirrored")`` puts one replica on each GPU; every step splits
the global batch across them and all-reduces the gradients.  Keep the *per-replica* batch the
size that fits one device and let the global batch grow with the replicas; the learning rate
follows the linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD"), with a
warm-up because a large rate is unstable in the first epochs.  For Adam the square-root rule is
the more conservative choice (``rule="sqrt"``).  The paper's 8-GPU run: per-replica batch 32 ->
global 256, rate x8 under the linear rule.

Usage (what a notebook's ``distribute`` parameter does)::

    strat = strategy(distribute)                      # "none" | "mirrored" | "auto"
    recipe = scale_batch_and_lr(32, 5e-4, strat.num_replicas_in_sync)
    with strat.scope():
        model = build_mobilenetv2(...)
        result = train_model(model, data, epochs, lr=recipe.learning_rate,
                             batch_size=recipe.global_batch, warmup_epochs=recipe.warmup_epochs)

TensorFlow is imported lazily: the scaling rule needs none of it, and logical CPU devices (the
way to test a mirrored strategy without GPUs) must be configured before TensorFlow initialises.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ppdl_utils.errors import PPDLError

KINDS = ("none", "default", "mirrored", "auto")
RULES = ("linear", "sqrt", "none")


class DistributeError(PPDLError, ValueError):
    """A distribution kind, device set-up or scaling parameter cannot be used; the message names it."""


def configure_logical_cpus(count: int) -> list[str]:
    """Split the first physical CPU into `count` logical devices (so a mirrored strategy can be
    tested without GPUs).  Must run before TensorFlow initialises its devices."""
    import tensorflow as tf

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise DistributeError(f"count must be a positive int, got {count!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as exc:
        raise DistributeError(f"cannot split the CPU into {count} logical devices: TensorFlow is already "
                              f"initialised in this process ({exc}); call configure_logical_cpus first, "
                              "e.g. at the top of a fresh kernel") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def replica_devices() -> list[str]:
    """The devices a mirrored strategy uses: every GPU, else every logical CPU device."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def strategy(kind: str = "none"):
    """A ``tf.distribute.Strategy``.

    * ``"none"`` / ``"default"``: the default strategy (one device, what plain Keras does);
    * ``"mirrored"``: ``MirroredStrategy`` over :func:`replica_devices` (all GPUs, else the logical
      CPUs; with a single device it still works, with one replica);
    * ``"auto"``: mirrored when more than one device is available, else the default.
    """
    if kind not in KINDS:
        raise DistributeError(f"distribute={kind!r} is unknown; expected one of {', '.join(KINDS)}")
    import tensorflow as tf

    if kind in ("none", "default"):
        return tf.distribute.get_strategy()
    devices = replica_devices()
    if kind == "auto" and len(devices) < 2:
        return tf.distribute.get_strategy()
    # CPU replicas cannot use NCCL: the default cross-device ops pick it only for GPUs
    ops = None if any("GPU" in d for d in devices) else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=ops)


@dataclass(frozen=True)
class ScaledRecipe:
    """Batch size and learning rate for `replicas` data-parallel replicas."""

    replicas: int
    per_replica_batch: int
    global_batch: int
    learning_rate: float
    warmup_epochs: float
    rule: str

    def describe(self) -> str:
        return (f"{self.replicas} replica(s) x {self.per_replica_batch} = global batch {self.global_batch}, "
                f"learning rate {self.learning_rate:.3g} ({self.rule} rule), warm-up {self.warmup_epochs:g} epochs")


def scale_batch_and_lr(per_replica_batch: int, base_lr: float, replicas: int, rule: str = "linear",
                       base_batch: int | None = None, warmup_epochs: float = 5.0) -> ScaledRecipe:
    """Scale a recipe tuned at `base_batch` (default: `per_replica_batch`, i.e. one device) to
    `replicas` replicas: global batch = per_replica_batch x replicas, and the learning rate times
    k = global / base_batch (``linear``), sqrt(k) (``sqrt``) or unchanged (``none``).  The warm-up
    (Goyal et al.: 5 epochs) applies only when the rate actually grows."""
    for name, value in (("per_replica_batch", per_replica_batch), ("replicas", replicas)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DistributeError(f"{name} must be a positive int, got {value!r}")
    if rule not in RULES:
        raise DistributeError(f"rule={rule!r} is unknown; expected one of {', '.join(RULES)}")
    if not (isinstance(base_lr, (int, float)) and math.isfinite(base_lr) and base_lr > 0):
        raise DistributeError(f"base_lr must be a positive finite number, got {base_lr!r}")
    base = per_replica_batch if base_batch is None else base_batch
    if isinstance(base, bool) or not isinstance(base, int) or base < 1:
        raise DistributeError(f"base_batch must be a positive int or None, got {base_batch!r}")
    global_batch = per_replica_batch * replicas
    factor = {"linear": global_batch / base, "sqrt": math.sqrt(global_batch / base), "none": 1.0}[rule]
    return ScaledRecipe(replicas, per_replica_batch, global_batch, float(base_lr) * factor,
                        float(warmup_epochs) if factor > 1 else 0.0, rule)
