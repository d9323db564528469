"""The run record: what one trained model of a training run is, written once and read everywhere.

Notebook 03 writes one :class:`RunRecord` per trained model (``<run>/03_<label>.json`` under
``results/``, plus its ``_history.csv`` and ``_predictions.csv``); notebooks 04, 06 and 08 and the key-draw report read
them back with :func:`load_records`.  The JSON keys are the dataclass fields, so a record is
never guessed back from "any nesting of dicts": a missing required field is an error naming the
file and the field.  Records written before this class existed load unchanged (their keys are
the same); keys this class does not know are kept in ``extra``.

Every record carries ``schema`` (:data:`SCHEMA_VERSION`; a record without one is schema 1) and is
validated on load: accuracies and F1 scores are finite fractions in [0, 1] (a percentage, NaN or a
string is refused), the 95 % interval holds two such numbers around the accuracy, counts are
non-negative integers (``n_test`` at least 1), and ``classes`` matches ``class_names``.  A record
of a newer schema is refused rather than misread.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ppdl_utils.errors import PPDLError, as_path
from ppdl_utils.outputs import results_path, run_dir

PREFIX = "03"  # the notebook that trains the models
#: 2: the ``schema`` field and validation on load; records without the field are schema 1.
SCHEMA_VERSION = 2


class RecordError(PPDLError, ValueError):
    """A run-record file is missing, malformed or lacks a field; the message names file and field."""


def safe_name(label: str) -> str:
    """A label as it appears in file names (``table+input_table`` stays readable)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label)


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (well-behaved at 0 and 1 and for small n)."""
    if total <= 0:
        return float("nan"), float("nan")
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar test on paired correctness (the same images): (two-sided p, a-only correct, b-only correct)."""
    from scipy.stats import binomtest

    a_correct, b_correct = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    a_only = int((a_correct & ~b_correct).sum())
    b_only = int((b_correct & ~a_correct).sum())
    if a_only + b_only == 0:
        return 1.0, 0, 0
    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue), a_only, b_only


@dataclass
class EvaluationSummary:
    """Test-set numbers of one model (the restored best-validation epoch, on the held-out test part)."""

    test_accuracy: float
    test_accuracy_ci95: tuple[float, float]
    macro_f1: float
    weighted_f1: float
    n_test: int
    classes: int
    f1: dict[str, float]

    def __post_init__(self) -> None:
        self.test_accuracy_ci95 = tuple(float(v) for v in self.test_accuracy_ci95)  # JSON gives a list

    @classmethod
    def from_predictions(cls, y_true: Sequence[int], y_pred: Sequence[int],
                         class_names: Sequence[str]) -> "EvaluationSummary":
        from sklearn.metrics import f1_score

        y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
        labels = list(range(len(class_names)))
        per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        correct = int(np.sum(y_true == y_pred))
        return cls(test_accuracy=correct / max(1, len(y_true)),
                   test_accuracy_ci95=wilson_interval(correct, len(y_true)),
                   macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
                   weighted_f1=float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
                   n_test=len(y_true), classes=len(class_names),
                   f1={c: float(v) for c, v in zip(class_names, per_class)})


@dataclass
class TrainSummary:
    """How training went: the restored epoch and what it cost."""

    best_epoch: int
    best_val_accuracy: float
    n_train: int
    n_val: int
    seconds_per_step: float = float("nan")
    first_step_seconds: float = float("nan")
    images_per_second: float = float("nan")
    wall_seconds: float = float("nan")
    steps_per_epoch: int = 0
    batch_size: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    """One trained model of a run (``run`` = data source + quick flag + suffix, ``label`` = the model).

    ``regime`` is ``plain`` or a Paillier regime name; ``regime_label`` says in words whether it is
    secure.  ``key_draw`` and ``split_seed`` tell repeated runs apart (key-draw distributions)."""

    run: str
    label: str
    regime: str
    regime_label: str
    class_names: list[str]
    summary: EvaluationSummary
    train: TrainSummary
    data: str = "SYNTHETIC"
    source_label: str = ""
    image_size: int = 0
    epochs: int = 0
    architecture: str = ""
    weights: str | None = None
    bn_momentum: float | None = None
    key_bits: int | None = None
    key_fingerprint: str | None = None
    renderer: str = "mod256"
    seed: int = 0
    split_seed: int | None = None
    key_draw: int | None = None
    quick: bool = False
    input_table: str | None = None
    order: int = 0
    split_counts: dict[str, list[int]] = field(default_factory=dict)
    cipher_stats: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    saved: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION
    history: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    predictions: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ convenience
    @property
    def test_accuracy(self) -> float:
        return self.summary.test_accuracy

    @property
    def secure(self) -> bool:
        return self.regime == "randomized"

    def paths(self, results_dir: "str | Path") -> dict[str, Path]:
        """The record's three files in its run folder, ``results_dir/<run>/03_<label>*``."""
        stem = f"{PREFIX}_{safe_name(self.label)}"
        return {key: results_path(safe_name(self.run), f"{stem}{end}", results_dir) for key, end in
                (("json", ".json"), ("history", "_history.csv"), ("predictions", "_predictions.csv"))}

    # ------------------------------------------------------------------ save / load
    def to_json(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("history", "predictions", "extra", "summary", "train")}
        body["summary"] = dataclasses.asdict(self.summary)
        body["train"] = {**{k: v for k, v in dataclasses.asdict(self.train).items() if k != "extra"},
                         **self.train.extra}
        # normalised through JSON once, so that to_json() equals what load() reads back
        return json.loads(json.dumps({**body, **self.extra}, default=_json_default))

    def save(self, results_dir: "str | Path") -> dict[str, Path]:
        """Write the JSON record and its two CSVs atomically (a crash never leaves half a record)."""
        paths = self.paths(results_dir)
        paths["json"].parent.mkdir(parents=True, exist_ok=True)
        if not self.saved:
            self.saved = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.versions = self.versions or package_versions()
        for key, frame, kwargs in (("history", self.history, {"index": False}),
                                   ("predictions", self.predictions, {"index_label": "test_index"})):
            if frame is not None:
                _atomic_write(paths[key], frame.to_csv(**kwargs))
        _atomic_write(paths["json"], json.dumps(self.to_json(), indent=1))
        return paths

    @classmethod
    def from_json(cls, body: Mapping[str, Any], source: str = "<record>") -> "RunRecord":
        if not isinstance(body, Mapping):
            raise RecordError(f"{source}: a run record is a JSON object, got {type(body).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in body.items() if k in known and k not in ("history", "predictions")}
        values["extra"] = {k: v for k, v in body.items() if k not in known}
        for name in ("run", "label", "class_names", "summary", "train"):
            if name not in body:
                raise RecordError(f"{source}: the run record lacks the field {name!r}")
        values["schema"] = _check_schema(body.get("schema", 1), source)
        validate_body(body, source)
        values.setdefault("regime", str(body["label"]).split("+")[0])
        values.setdefault("regime_label", values["regime"])
        values["summary"] = _typed(EvaluationSummary, body["summary"], f"{source}: summary")
        values["train"] = _train_summary(body["train"], f"{source}: train")
        values["settings"] = {**{k: body[k] for k in _LEGACY_SETTINGS if k in body}, **(body.get("settings") or {})}
        values["extra"] = {k: v for k, v in values["extra"].items() if k not in _LEGACY_SETTINGS}
        return cls(**values)

    @classmethod
    def load(cls, path: "str | Path", with_tables: bool = True) -> "RunRecord":
        """Read ``<run>/03_<label>.json`` (and, by default, its history and predictions CSVs)."""
        path = as_path(path, "run record path", RecordError)
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:
            raise RecordError(f"run record {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise RecordError(f"run record {path} is not readable JSON: {exc}") from None
        record = cls.from_json(body, str(path))
        if with_tables:
            stem = path.with_suffix("")
            for name in ("history", "predictions"):
                csv = stem.with_name(f"{stem.name}_{name}.csv")
                if not csv.is_file():
                    raise RecordError(f"run record {path}: its {name} file {csv.name} is missing")
                try:
                    setattr(record, name, pd.read_csv(csv))
                except (OSError, ValueError, pd.errors.ParserError) as exc:
                    raise RecordError(f"run record {path}: its {name} file {csv.name} cannot be read: {exc}") from None
        return record


def _check_schema(schema: Any, source: str) -> int:
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise RecordError(f"{source}: field 'schema' must be a positive integer, got {schema!r:.40}")
    if schema > SCHEMA_VERSION:
        raise RecordError(f"{source}: schema {schema} is newer than this package reads ({SCHEMA_VERSION}); "
                          "update ppdl_utils")
    return schema


def _fraction(value: Any, where: str) -> float:
    """A finite number in [0, 1]; a percentage, NaN, a bool or a string is a RecordError naming `where`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{where} must be a number in [0, 1], got {value!r:.40}")
    if not np.isfinite(value):
        raise RecordError(f"{where} is {value}: not a finite number")
    if not 0.0 <= value <= 1.0:
        hint = " (a percentage? records hold fractions)" if 1.0 < value <= 100.0 else ""
        raise RecordError(f"{where} = {value} is outside [0, 1]{hint}")
    return float(value)


def _count(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RecordError(f"{where} must be an integer >= {minimum}, got {value!r:.40}")
    return value


def validate_body(body: Mapping[str, Any], source: str) -> None:
    """Check the values of a record's JSON body (types and ranges); RecordError naming file and field."""
    for name in ("run", "label"):
        if not isinstance(body[name], str) or not body[name]:
            raise RecordError(f"{source}: field {name!r} must be a non-empty string")
    names = body["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RecordError(f"{source}: field 'class_names' must be a non-empty list of strings")
    summary, train = body["summary"], body["train"]
    if not isinstance(summary, Mapping) or not isinstance(train, Mapping):
        return  # _typed names the field
    where = f"{source}: summary"
    for name in ("test_accuracy", "macro_f1", "weighted_f1"):
        if name in summary:
            _fraction(summary[name], f"{where}.{name}")
    ci = summary.get("test_accuracy_ci95", [0.0, 1.0])
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        raise RecordError(f"{where}.test_accuracy_ci95 must be [low, high], got {ci!r:.40}")
    low, high = (_fraction(v, f"{where}.test_accuracy_ci95") for v in ci)
    if low > high:
        raise RecordError(f"{where}.test_accuracy_ci95 = {list(ci)}: low > high")
    if "n_test" in summary:
        _count(summary["n_test"], f"{where}.n_test", minimum=1)
    if "classes" in summary and _count(summary["classes"], f"{where}.classes", 1) != len(names):
        raise RecordError(f"{where}.classes = {summary['classes']} but class_names has {len(names)} names")
    f1 = summary.get("f1", {})
    if not isinstance(f1, Mapping):
        raise RecordError(f"{where}.f1 must be an object of class: score")
    for name, value in f1.items():
        _fraction(value, f"{where}.f1[{name!r}]")
    where = f"{source}: train"
    if "best_val_accuracy" in train:
        _fraction(train["best_val_accuracy"], f"{where}.best_val_accuracy")
    for name in ("best_epoch", "n_train", "n_val"):
        if name in train:
            _count(train[name], f"{where}.{name}")


# settings that older records kept at the top level
_LEGACY_SETTINGS = ("lr", "batch_size", "schedule", "warmup_epochs", "monitor_test", "cpu_count", "load_average")


def _typed(cls, values: Any, where: str):
    if not isinstance(values, Mapping):
        raise RecordError(f"{where} must be an object, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    if missing:
        raise RecordError(f"{where} lacks the field(s) {missing}")
    return cls(**{k: v for k, v in values.items() if k in names})


def _train_summary(values: Any, where: str) -> TrainSummary:
    summary = _typed(TrainSummary, values, where)
    names = {f.name for f in dataclasses.fields(TrainSummary)}
    summary.extra = {k: v for k, v in values.items() if k not in names}
    return summary


_PACKAGES = ("numpy", "pandas", "scikit-learn", "tensorflow", "tensorflow-cpu", "keras", "phe", "gmpy2", "tenseal",
             "ppdl-utils")


def package_versions() -> dict[str, str]:
    """Python and the installed versions of the packages the results depend on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, (np.ndarray, tuple)):
        return list(np.asarray(obj).tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"a run record cannot hold {type(obj).__name__} values")


def load_records(results_dir: "str | Path", run: str, with_tables: bool = True) -> dict[str, RunRecord]:
    """Every model of `run` in ``results_dir/<run>/``, ``{label: record}`` in training order.

    Only exact run names match (``synthetic`` never picks up ``synthetic_quick``).  No record is an
    error that says which notebook writes them."""
    results_dir = as_path(results_dir, "results_dir", RecordError)
    out = {}
    for path in sorted(run_dir(results_dir, safe_name(run)).glob(f"{PREFIX}_*.json")):
        try:
            head = json.loads(path.read_text())
        except ValueError as exc:
            raise RecordError(f"run record {path} is not readable JSON: {exc}") from None
        if not isinstance(head, Mapping) or head.get("run") != run or "summary" not in head:
            continue  # a record copied from another run, or another file of the notebook
        record = RunRecord.load(path, with_tables)
        out[record.label] = record
    if not out:
        raise RecordError(f"no run records named {run!r} in {results_dir}: run notebooks/03_training.ipynb "
                          "first with the same data_dir, quick and run_suffix")
    return dict(sorted(out.items(), key=lambda kv: kv[1].order))


def finished_record(results_dir: "str | Path", run: str, label: str, provenance: Mapping[str, Any],
                    settings: Mapping[str, Any] | None = None) -> RunRecord | None:
    """The saved record of model `label` of `run` when it was trained with exactly this `provenance`
    (data, key fingerprint, split seed, epochs, ...) and these training `settings`; None when there is
    none, it is unreadable, or anything differs (then the model is trained again).  This is what makes
    a killed multi-model run resumable model by model."""
    folder = run_dir(as_path(results_dir, "results_dir", RecordError), safe_name(run))
    path = folder / f"{PREFIX}_{safe_name(label)}.json"
    if not path.is_file():
        return None
    try:
        record = RunRecord.load(path)
    except RecordError:
        return None
    saved = record.to_json()
    want = json.loads(json.dumps(dict(provenance), default=_json_default))
    if any(saved.get(key) != value for key, value in want.items()):
        return None
    saved_settings = saved.get("settings") or {}
    want_settings = json.loads(json.dumps(dict(settings or {}), default=_json_default))
    if any(saved_settings.get(key) != value for key, value in want_settings.items()):
        return None
    return record


def accuracies_by_regime(records: Mapping[str, RunRecord]) -> dict[str, float]:
    """``{label: test accuracy}`` of a run's models (labels as trained: ``table``, ``table+input_table``)."""
    return {label: r.summary.test_accuracy for label, r in records.items()}
