"""The osteoporosis CSV loader, feature encoding and integer quantization."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppdl_utils.data.tabular import (
    MinMaxQuantizer,
    encode_features,
    load_osteoporosis_csv,
    quantize_features,
)
from ppdl_utils.errors import DataError

HEADER = ("Id,Age,Gender,Hormonal Changes,Family History,Race/Ethnicity,Body Weight,Calcium Intake,"
          "Vitamin D Intake,Physical Activity,Smoking,Alcohol Consumption,Medical Conditions,Medications,"
          "Prior Fractures,Osteoporosis")
ROWS = [
    "1734616,69,Female,Normal,Yes,Asian,Underweight,Low,Sufficient,Sedentary,Yes,Moderate,Rheumatoid Arthritis,"
    "Corticosteroids,Yes,1",
    "1419098,32,Female,Normal,Yes,Asian,Underweight,Low,Sufficient,Sedentary,No,None,None,None,Yes,1",
    "1797916,21,Male,Postmenopausal,No,Caucasian,Normal,Adequate,Insufficient,Active,No,None,Hyperthyroidism,None,No,0",
    "1805337,25,Male,Normal,No,African American,Normal,Adequate,Sufficient,Active,Yes,Moderate,None,"
    "Corticosteroids,No,0",
]


def _write_csv(path, header=HEADER, rows=ROWS):
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())
    return path


def test_loads_crlf_csv_keeping_none_as_a_category(tmp_path):
    path = _write_csv(tmp_path / "osteoporosis.csv")
    assert b"\r\n" in path.read_bytes()
    # what pandas would do by default: "None" becomes NaN
    assert pd.read_csv(path)["Medications"].isna().sum() == 2
    df = load_osteoporosis_csv(path)
    assert "Id" not in df.columns and len(df) == 4 and df.shape[1] == 15
    assert df["Medications"].tolist() == ["Corticosteroids", "None", "None", "Corticosteroids"]
    assert df["Alcohol Consumption"].isna().sum() == 0
    assert (df["Medical Conditions"] == "None").sum() == 2
    assert df["Osteoporosis"].tolist() == [1, 1, 0, 0] and df["Age"].tolist() == [69, 32, 21, 25]
    assert not any(c.endswith("\r") for c in df.columns) and df["Osteoporosis"].dtype == np.int64


def test_missing_file_and_missing_target_are_named(tmp_path):
    with pytest.raises(DataError, match="nothere.csv"):
        load_osteoporosis_csv(tmp_path / "nothere.csv")
    no_target = _write_csv(tmp_path / "no_target.csv", header=HEADER.rsplit(",", 1)[0],
                           rows=[r.rsplit(",", 1)[0] for r in ROWS])
    with pytest.raises(DataError, match="Osteoporosis"):
        load_osteoporosis_csv(no_target)
    bad_target = _write_csv(tmp_path / "bad_target.csv", rows=[ROWS[0][:-1] + "maybe"])
    with pytest.raises(DataError, match="maybe"):
        load_osteoporosis_csv(bad_target)
    bad_age = _write_csv(tmp_path / "bad_age.csv", rows=[ROWS[0].replace(",69,", ",old,")])
    with pytest.raises(DataError, match="Age"):
        load_osteoporosis_csv(bad_age)


def test_encode_features(tmp_path):
    df = load_osteoporosis_csv(_write_csv(tmp_path / "o.csv"))
    X, y, names = encode_features(df)
    assert X.dtype == np.float32 and X.shape == (4, len(names)) and y.tolist() == [1, 1, 0, 0]
    assert names[0] == "Age" and X[:, 0].tolist() == [69, 32, 21, 25]
    col = {n: X[:, i] for i, n in enumerate(names)}
    assert col["Gender=Female"].tolist() == [1, 1, 0, 0]
    assert col["Medications=Corticosteroids"].tolist() == [1, 0, 0, 1]
    assert col["Medical Conditions=None"].tolist() == [0, 1, 0, 1]
    assert col["Race/Ethnicity=Caucasian"].tolist() == [0, 0, 1, 0]
    # one-hot rows sum to one within each multi-valued column
    race = X[:, [i for i, n in enumerate(names) if n.startswith("Race/Ethnicity=")]]
    assert race.sum(axis=1).tolist() == [1, 1, 1, 1]
    # a subset is encoded into the same columns (fixed vocabulary)
    X2, _, names2 = encode_features(df.iloc[[2]])
    assert names2 == names and np.array_equal(X2[0], X[2])
    # the Id column, when present, is not a feature
    _, _, with_id = encode_features(df.assign(Id=[1, 2, 3, 4]))
    assert "Id" not in with_id


def test_encode_features_rejects_unknown_values_and_missing_target(tmp_path):
    df = load_osteoporosis_csv(_write_csv(tmp_path / "o.csv"))
    with pytest.raises(DataError, match="Smoking"):
        encode_features(df.assign(Smoking=["Yes", "Sometimes", "No", "No"]))
    with pytest.raises(DataError, match="Osteoporosis"):
        encode_features(df.drop(columns=["Osteoporosis"]))


def test_quantize_fits_on_train_and_reuses_the_scaler():
    rng = np.random.default_rng(0)
    X_train = np.column_stack([rng.uniform(18, 90, 50), rng.integers(0, 2, 50), np.full(50, 3.0)])
    Q, scaler = quantize_features(X_train)
    assert Q.dtype == np.uint8 and Q.min() == 0 and Q.max() == 255
    assert Q[np.argmin(X_train[:, 0]), 0] == 0 and Q[np.argmax(X_train[:, 0]), 0] == 255
    assert set(np.unique(Q[:, 1])) == {0, 255} and np.all(Q[:, 2] == 0)  # constant column -> 0
    X_test = np.array([[10.0, 1.0, 3.0], [100.0, 0.0, 5.0], [54.0, 0.0, 3.0]])
    Qt, same = quantize_features(X_test, scaler=scaler)
    assert same is scaler
    assert Qt[0, 0] == 0 and Qt[1, 0] == 255  # outside the training range: clipped
    mid = np.rint((54 - X_train[:, 0].min()) / np.ptp(X_train[:, 0]) * 255)
    assert Qt[2, 0] == mid
    back = scaler.inverse_transform(Q)
    assert np.abs(back[:, 0] - X_train[:, 0]).max() <= np.ptp(X_train[:, 0]) / 255 / 2 + 1e-4


def test_quantize_levels_and_errors():
    X = np.arange(20, dtype=float).reshape(10, 2)
    Q, _ = quantize_features(X, levels=16)
    assert Q.max() == 15 and Q.min() == 0
    with pytest.raises(DataError, match="levels"):
        quantize_features(X, levels=300)
    with pytest.raises(DataError, match="columns"):
        MinMaxQuantizer.fit(X).transform(np.zeros((2, 3)))
    with pytest.raises(DataError, match="NaN"):
        quantize_features(np.array([[np.nan, 1.0]]))
