"""The regime study: the same network, split, seed and budget on plain images and on every regime's
rendered cipher images, each model trained, tested once and recorded.

Notebook 03 and ``bench/check_synthetic_default.py`` both run it::

    jobs = regimes.jobs(["plain", "table", "randomized"], ["table"])      # every regime parsed once, here
    data, rows = regimes.encrypt_regimes(images, labels, split, jobs, regimes.direct_encryptor(key), 10, seed)
    recipe = regimes.Recipe("small_cnn", image_size=64, n_classes=4, seed=seed)
    result, evaluation = regimes.train_and_test(jobs[1], data, recipe, epochs=10, settings={"lr": 5e-4})

A job names a model (``table``, ``table+input_table``), the :class:`~ppdl_utils.crypto.regimes.Regime`
its images are encrypted under (None for plain) and whether it gets the learnable 256-entry input
layer.  Each regime is encrypted once, whatever number of jobs use it; the randomized regime, whose
encryption costs seconds per image, on a per-class subset of every part of the split.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ppdl_utils.crypto.paillier import PaillierPrivateKey
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.images.encrypted_cache import encrypt_cached
from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.images.render import rendering_stats
from ppdl_utils.learning import input_table, models, training
from ppdl_utils.records import RunRecord, finished_record

PLAIN = "plain"
PLAIN_LABEL = "plain (no encryption)"


@dataclass(frozen=True)
class Job:
    """One model of the study: its label, the regime its images are encrypted under (None: plain) and
    whether it has the learnable input layer."""
    order: int
    label: str
    regime: Regime | None
    use_table: bool

    @property
    def regime_name(self) -> str:
        return PLAIN if self.regime is None else self.regime.value

    @property
    def regime_label(self) -> str:
        return PLAIN_LABEL if self.regime is None else self.regime.label


def parse_regime(name: "str | Regime") -> Regime | None:
    """``"plain"`` -> None; a regime's name -> the :class:`Regime` (a ParameterError names a bad one)."""
    return None if name == PLAIN else Regime.parse(name)


def jobs(regimes: Sequence[str], input_table_regimes: Sequence[str] = (),
         table_suffix: str = "+input_table") -> list[Job]:
    """The models of a study: every regime bare, then every `input_table_regimes` with the input layer
    (labelled ``<regime><table_suffix>``)."""
    bare = [(r, parse_regime(r), False) for r in regimes]
    tabled = [(f"{r}{table_suffix}", parse_regime(r), True) for r in input_table_regimes]
    return [Job(order, label, regime, use_table) for order, (label, regime, use_table) in enumerate(bare + tabled)]


@dataclass
class RegimeData:
    """What a model of one regime is trained on: the images it sees, their labels and split, and the
    plain images they encrypt (same order); `stats` are the rendering's statistics (none for plain)."""
    images: np.ndarray
    labels: np.ndarray
    split: dict
    plain: np.ndarray
    stats: dict = field(default_factory=dict)


#: (regime, the images to encrypt, their indices in the dataset) -> (rendered uint8 images, facts for the table)
Encrypt = Callable[[Regime, np.ndarray, np.ndarray], "tuple[np.ndarray, dict]"]


def cached_encryptor(key: PaillierPrivateKey, renderer: str, hashes: Sequence[str], cache_dir: "str | Path",
                     source: str = "") -> Encrypt:
    """Encryption through the on-disk cache (notebook 03): an entry is reused when the images, size,
    regime, renderer and key are the same."""
    def encrypt(regime: Regime, images: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, dict]:
        entry = encrypt_cached(images, key, regime, renderer, [hashes[i] for i in idx], cache_dir, source=source)
        return entry.images, {"cache hit": entry.hit, "file": entry.path.name,
                              "encrypt seconds": entry.meta["encrypt_seconds"]}
    return encrypt


def direct_encryptor(key: PaillierPrivateKey, renderer: str = "mod256") -> Encrypt:
    """Encryption in memory, a fresh secret table or fixed r per regime (nothing is written)."""
    def encrypt(regime: Regime, images: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, dict]:
        start = time.perf_counter()
        rendered = ImageEncryptor(key, regime).encrypt_rendered(images, renderer, progress=False)
        return rendered, {"encrypt seconds": time.perf_counter() - start}
    return encrypt


def encrypt_regimes(images: np.ndarray, labels: np.ndarray, split: dict, study: Iterable[Job], encrypt: Encrypt,
                    randomized_max_per_class: int | None, seed: int = 0,
                    with_stats: bool = True) -> tuple[dict[str, RegimeData], list[dict]]:
    """Every regime of `study` encrypted once: ``{regime name: RegimeData}`` (plain included when a job
    is plain) and one row per encrypted regime (images, what `encrypt` reports, rendering statistics)."""
    data: dict[str, RegimeData] = {}
    rows = []
    for job in study:
        if job.regime_name in data:
            continue
        if job.regime is None:
            data[PLAIN] = RegimeData(images, labels, split, images)
            continue
        part = training.cap_split(split, labels, randomized_max_per_class, seed) \
            if job.regime is Regime.RANDOMIZED else split
        idx = np.array(sorted(set().union(*map(set, part.values()))), dtype=int)
        rendered, facts = encrypt(job.regime, images[idx], idx)
        stats = rendering_stats(images[idx], rendered) if with_stats else {}  # how many gray levels merge
        data[job.regime_name] = RegimeData(rendered, labels[idx], {k: np.searchsorted(idx, v) for k, v in part.items()},
                                           images[idx], stats)
        rows.append({"regime": job.regime.label, "images": len(idx), **facts, **stats})
    return data, rows


@dataclass(frozen=True)
class Recipe:
    """The network every model of a study starts from (the same initial weights: seeded before each build)."""
    architecture: str  # "small_cnn" or "mobilenetv2"
    image_size: int
    n_classes: int
    weights: str | None = None
    bn_momentum: float = 0.9
    input_table_init: str = "seriation"
    seed: int = 0


def build_model(recipe: Recipe, use_table: bool, train_images: np.ndarray, plain_train: np.ndarray | None = None):
    """A fresh model of `recipe`, with the learnable input layer started by ``recipe.input_table_init``."""
    training.set_seed(recipe.seed)  # same initial weights for every model, whatever ran before
    init = input_table.input_table_init(recipe.input_table_init, train_images, plain_train) if use_table else None
    if recipe.architecture == "small_cnn":
        return models.build_small_cnn(recipe.image_size, recipe.n_classes, learnable_input_table=use_table,
                                      input_table_init=init)
    return models.build_mobilenetv2(recipe.image_size, recipe.n_classes, weights=recipe.weights,
                                    bn_momentum=recipe.bn_momentum, learnable_input_table=use_table,
                                    input_table_init=init)


def train_and_test(job: Job, data: Mapping[str, RegimeData], recipe: Recipe, epochs: int, settings: Mapping,
                   strategy=None):
    """Build, train (best validation epoch restored) and test the model of `job`: (TrainResult, evaluation).
    `settings` go to :func:`~ppdl_utils.learning.training.fit_and_test` (lr, batch_size, seed, ...);
    `strategy` is a ``tf.distribute`` strategy to build and train under (None: the default)."""
    regime = data[job.regime_name]
    train = regime.split["train"]
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(recipe, job.use_table, regime.images[train], regime.plain[train])
        return training.fit_and_test(model, regime.images, regime.labels, regime.split, epochs, label=job.label,
                                     **settings)


def train_and_record(study: Sequence[Job], data: Mapping[str, RegimeData], recipe: Recipe, epochs: int,
                     settings: Mapping, *, run: str, class_names: list[str], provenance: Mapping,
                     results_dir: "str | Path", strategy=None, resume: bool = False) -> dict[str, RunRecord]:
    """Every job trained, tested and saved as a run record under `run` (notebook 03); with `resume`, a
    model already saved with the same provenance and settings is kept instead."""
    records = {}
    for job in study:
        table = recipe.input_table_init if job.use_table else None
        done = resume and finished_record(results_dir, run, job.label, {**provenance, "input_table": table}, settings)
        if done:
            print(f"{job.label}: test accuracy {done.test_accuracy:.3f} (saved {done.saved} with these settings: kept)")
            records[job.label] = done
            continue
        regime = data[job.regime_name]
        result, evaluation = train_and_test(job, data, recipe, epochs, settings, strategy)
        record = training.run_record(
            result, evaluation, run=run, label=job.label, regime=job.regime_name, class_names=class_names,
            order=job.order, regime_label=job.regime_label, input_table=table, cipher_stats=regime.stats,
            split_counts={k: np.bincount(regime.labels[v], minlength=len(class_names)).tolist()
                          for k, v in regime.split.items()},
            settings={**settings, "cpu_count": os.cpu_count(), "load_average": os.getloadavg()}, **provenance)
        record.save(results_dir)
        print(f"{job.label}: test accuracy {record.test_accuracy:.3f} (best val {result.best_val_accuracy:.3f} "
              f"@ epoch {result.best_epoch}, {result.seconds_per_step:.3f} s/step, {result.wall_seconds:.0f} s)")
        records[job.label] = record
    return records
