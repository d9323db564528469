"""The Kaggle "Lifestyle Factors Influencing Osteoporosis" table: loading, encoding, quantizing.

The CSV (CRLF line ends) spells the absence of a factor as the string ``None`` in
``Alcohol Consumption``, ``Medical Conditions`` and ``Medications``: there it means "no
alcohol", "no condition", "no medication", a category of its own, not a missing value.
pandas would read it as NaN by default, so :func:`load_osteoporosis_csv` reads every field
verbatim and only an *empty* field counts as missing.

:func:`encode_features` uses the fixed category vocabularies of the real file, so any subset
(train / val / test) is encoded into the same columns.  :func:`quantize_features` maps
features to integers 0..levels-1 for encryption schemes that work on integers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ppdl_utils.errors import DataError

__all__ = [
    "OSTEOPOROSIS_COLUMNS",
    "OSTEOPOROSIS_CATEGORIES",
    "TARGET",
    "load_osteoporosis_csv",
    "encode_features",
    "MinMaxQuantizer",
    "quantize_features",
]

TARGET = "Osteoporosis"
ID_COLUMN = "Id"

#: Columns of the Kaggle CSV, in file order.
OSTEOPOROSIS_COLUMNS: tuple[str, ...] = (
    "Id", "Age", "Gender", "Hormonal Changes", "Family History", "Race/Ethnicity", "Body Weight",
    "Calcium Intake", "Vitamin D Intake", "Physical Activity", "Smoking", "Alcohol Consumption",
    "Medical Conditions", "Medications", "Prior Fractures", "Osteoporosis",
)

#: Category vocabulary of each categorical column, read off the real file (1958 rows).
#: Two-valued columns list (reference level, risk level): they are encoded as one 0/1
#: feature ``"<column>=<risk level>"``; longer lists are one-hot encoded.
OSTEOPOROSIS_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Gender": ("Male", "Female"),
    "Hormonal Changes": ("Normal", "Postmenopausal"),
    "Family History": ("No", "Yes"),
    "Race/Ethnicity": ("African American", "Asian", "Caucasian"),
    "Body Weight": ("Normal", "Underweight"),
    "Calcium Intake": ("Adequate", "Low"),
    "Vitamin D Intake": ("Sufficient", "Insufficient"),
    "Physical Activity": ("Active", "Sedentary"),
    "Smoking": ("No", "Yes"),
    "Alcohol Consumption": ("None", "Moderate"),
    "Medical Conditions": ("None", "Hyperthyroidism", "Rheumatoid Arthritis"),
    "Medications": ("None", "Corticosteroids"),
    "Prior Fractures": ("No", "Yes"),
}

NUMERIC_COLUMNS: tuple[str, ...] = ("Age",)


def load_osteoporosis_csv(path: str | os.PathLike, target: str = TARGET) -> pd.DataFrame:
    """Read the osteoporosis CSV; drop ``Id``; keep ``"None"`` as a category.

    Every field is read as text (so ``None`` stays the string ``"None"``), surrounding
    spaces are stripped, ``Age`` becomes an integer column and the target an int 0/1 column.
    Only an empty field is missing (NaN).  CRLF or LF line ends and a UTF-8 BOM are fine.

    Raises:
        DataError: the file is missing/unreadable, the target column is missing, the target
            has values other than 0/1, or ``Age`` is not numeric (each message names them).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"osteoporosis CSV {path} does not exist")
    if not path.is_file():
        raise DataError(f"osteoporosis CSV path {path} is not a file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except Exception as exc:
        raise DataError(f"cannot read osteoporosis CSV {path}: {type(exc).__name__}: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    for col in df.columns:
        df[col] = df[col].str.strip()
    if target not in df.columns:
        raise DataError(f"osteoporosis CSV {path} has no target column {target!r}; columns: {list(df.columns)}")
    if ID_COLUMN in df.columns:
        df = df.drop(columns=[ID_COLUMN])

    y = pd.to_numeric(df[target], errors="coerce")
    bad = ~y.isin([0, 1])
    if bad.any():
        examples = sorted(set(df.loc[bad, target].fillna("<empty>").tolist()))[:5]
        raise DataError(
            f"osteoporosis CSV {path}: target column {target!r} must hold 0 or 1; "
            f"{int(bad.sum())} rows hold {examples}"
        )
    df[target] = y.astype(np.int64)
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            examples = sorted(set(df.loc[bad, col].tolist()))[:5]
            raise DataError(f"osteoporosis CSV {path}: column {col!r} must be numeric, found {examples}")
        df[col] = values.astype(np.int64) if values.notna().all() and (values % 1 == 0).all() else values
    return df.reset_index(drop=True)


def _encode_column(col: str, series: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(feature name, float32 values) for each feature one column gives (see :func:`encode_features`)."""
    if series.isna().any():
        raise DataError(
            f"column {col!r} has {int(series.isna().sum())} missing (empty) values; fill or drop them first"
        )
    if col in OSTEOPOROSIS_CATEGORIES:
        vocab = OSTEOPOROSIS_CATEGORIES[col]
        values = series.astype(str)
        unknown = sorted(set(values) - set(vocab))
        if unknown:
            raise DataError(f"column {col!r} has values {unknown[:5]} outside its vocabulary {list(vocab)}")
        levels = vocab[1:] if len(vocab) == 2 else vocab  # two-valued: one 0/1 feature for the risk level
        return [(f"{col}={v}", (values == v).to_numpy(np.float32)) for v in levels]
    if pd.api.types.is_numeric_dtype(series) or col in NUMERIC_COLUMNS:
        num = pd.to_numeric(series, errors="coerce")
        if num.isna().any():
            raise DataError(f"column {col!r} must be numeric")
        return [(col, num.to_numpy(np.float32))]
    values = series.astype(str)
    return [(f"{col}={v}", (values == v).to_numpy(np.float32)) for v in sorted(set(values))]


def encode_features(df: pd.DataFrame, target: str = TARGET) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Encode the table as numbers: ``(X float32 (n, d), y int64 (n,), feature_names)``.

    * ``Age`` (and any other numeric column) is kept as is.
    * Known two-valued columns become one 0/1 feature ``"<column>=<risk level>"``
      (e.g. ``"Gender=Female"``, ``"Medications=Corticosteroids"``).
    * Known multi-valued columns (``Race/Ethnicity``, ``Medical Conditions``) are one-hot
      encoded over their whole vocabulary (``"Medical Conditions=None"`` included), so every
      subset of the data gives the same columns.
    * Unknown text columns are one-hot encoded over their sorted values in ``df`` (encode the
      whole table before splitting if there are any).
    * ``Id`` is dropped if present.

    Raises:
        DataError: missing target, missing values, or a value outside a known vocabulary
            (naming the column and values).
    """
    if target not in df.columns:
        raise DataError(f"table has no target column {target!r}; columns: {list(df.columns)}")
    y_raw = pd.to_numeric(df[target], errors="coerce")
    if y_raw.isna().any() or not y_raw.isin([0, 1]).all():
        raise DataError(f"target column {target!r} must hold only 0 or 1")
    y = y_raw.to_numpy().astype(np.int64)

    encoded = [pair for col in df.columns if col not in (target, ID_COLUMN) for pair in _encode_column(col, df[col])]
    columns = [column for _, column in encoded]
    names = [name for name, _ in encoded]
    if not columns:
        raise DataError("table has no feature columns besides the target")
    X = np.stack(columns, axis=1).astype(np.float32)
    return X, y, names


@dataclass
class MinMaxQuantizer:
    """Per-column min-max map to integers ``0 .. levels-1`` (fitted on training data).

    Values outside the fitted range (val/test) are clipped.  A constant column maps to 0.
    """

    data_min: np.ndarray
    data_max: np.ndarray
    levels: int = 256

    @classmethod
    def fit(cls, X: np.ndarray, levels: int = 256) -> "MinMaxQuantizer":
        X = _check_matrix(X)
        _check_levels(levels)
        if len(X) == 0:
            raise DataError("'X' has no rows to fit the quantizer on")
        return cls(data_min=X.min(axis=0), data_max=X.max(axis=0), levels=int(levels))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = _check_matrix(X)
        if X.shape[1] != len(self.data_min):
            raise DataError(f"'X' has {X.shape[1]} columns but the quantizer was fitted on {len(self.data_min)}")
        span = self.data_max - self.data_min
        safe = np.where(span > 0, span, 1.0)
        scaled = (X - self.data_min) / safe * (self.levels - 1)
        scaled = np.where(span > 0, scaled, 0.0)
        return np.clip(np.rint(scaled), 0, self.levels - 1).astype(np.uint8)

    def inverse_transform(self, Q: np.ndarray) -> np.ndarray:
        """Approximate original values (the bin centres) of quantized features."""
        Q = np.asarray(Q, dtype=np.float64)
        return (self.data_min + Q / (self.levels - 1) * (self.data_max - self.data_min)).astype(np.float32)


def _check_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"'X' must be a 2-D (rows, features) array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise DataError("'X' holds NaN or infinite values")
    return X


def _check_levels(levels) -> None:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 2 <= levels <= 256:
        raise DataError(f"'levels' must be an int in [2, 256] (values fit in uint8), got {levels!r}")


def quantize_features(
    X: np.ndarray, levels: int = 256, scaler: MinMaxQuantizer | None = None
) -> tuple[np.ndarray, MinMaxQuantizer]:
    """Quantize features to uint8 integers in ``[0, levels-1]``; returns ``(Xq, scaler)``.

    Fit on the training set (``scaler=None``) and pass the returned scaler for val/test so all
    parts use the same per-column ranges::

        Xq_train, q = quantize_features(X_train)
        Xq_test, _ = quantize_features(X_test, scaler=q)
    """
    if scaler is None:
        scaler = MinMaxQuantizer.fit(X, levels=levels)
    return scaler.transform(X), scaler
