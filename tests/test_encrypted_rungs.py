"""Rungs 3-5 of the privacy ladder: encrypted results equal the plaintext twins; the server never
holds the secret key; inputs the encrypted network cannot take are refused with a named error."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tenseal as ts  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ppdl_utils.crypto import ckks  # noqa: E402
from ppdl_utils.learning import encrypted_cnn as ecnn  # noqa: E402
from ppdl_utils.learning import encrypted_mlp as emlp  # noqa: E402
from ppdl_utils.learning import encrypted_training as etrain  # noqa: E402
from ppdl_utils.learning.encrypted_common import (  # noqa: E402
    FeatureRange,
    FeatureRangeError,
    ImageTooLargeError,
    InputShapeError,
    LadderRow,
    OutputRangeError,
)

SPEC = ecnn.CNNSpec(image_size=28, kernel=7, stride=3, n_filters=2, hidden=16, n_classes=2)  # small: fast
# the shipped geometry (8x8/4: windows fill 64 slots exactly) and a kernel whose windows are padded (49 -> 64)
CNN_SPECS = {"8x8/4": ecnn.CNNSpec(image_size=28, n_filters=2, hidden=16, n_classes=2), "7x7/3 padded": SPEC}


def blob_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise plus a bright blob top-left (class 0) or bottom-right (class 1)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.uniform(0, 0.4, (n, 28, 28))
    for image, label in zip(images, labels):
        r = 4 if label == 0 else 16
        image[r:r + 8, r:r + 8] += 0.5
    return (images * 255).astype(np.uint8), labels


def confident(scores: np.ndarray, margin: float) -> np.ndarray:
    """Rows whose top-2 score gap exceeds ``margin`` (argmax cannot flip under smaller noise)."""
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2] > margin


@pytest.fixture(scope="module")
def cnn_ctx() -> ts.Context:
    return ckks.make_context(ckks.CNN_8192)


@pytest.fixture(scope="module")
def train_ctx() -> tuple[ts.Context, ts.Context]:
    """(key holder's private context, server's public copy) for rung 5."""
    ctx = ckks.make_context(ckks.TRAINING_8192)
    return ctx, ckks.load_context(ckks.public_context(ctx))


@pytest.fixture(scope="module", params=list(CNN_SPECS))
def cnn(request) -> ecnn.SquareCNN:
    spec = CNN_SPECS[request.param]
    images, labels = blob_images(192, seed=0)
    model = ecnn.train_keras_cnn(images, labels, spec, epochs=4, seed=0, lr=3e-3)
    return ecnn.cnn_from_keras(model, spec, calibration=images), model


def test_cnn_twin_equals_keras(cnn):
    square_cnn, model = cnn
    images, labels = blob_images(32, seed=1)
    keras_scores = model.predict(images[..., None].astype(np.float32) / 255, verbose=0)
    twin = ecnn.plain_cnn_scores(square_cnn, images) * square_cnn.output_scale
    assert np.allclose(twin, keras_scores, atol=1e-3 * max(1.0, np.abs(twin).max()))
    assert (twin.argmax(1) == labels).mean() >= 0.8  # the blob task is learnt


def test_encrypted_cnn_matches_twin(cnn, cnn_ctx):
    square_cnn, _ = cnn
    images, labels = blob_images(2, seed=2)
    row, scores = ecnn.encrypted_cnn_cost(cnn_ctx, square_cnn, images, labels, progress=False)
    twin = ecnn.plain_cnn_scores(square_cnn, images)
    tolerance = 0.02 * max(1.0, np.abs(twin).max())
    assert np.abs(scores - twin).max() < tolerance
    sure = confident(twin, 2 * tolerance)
    assert (scores.argmax(1)[sure] == twin.argmax(1)[sure]).all() and sure.sum() >= 1
    assert isinstance(row, LadderRow) and row.rung == 4 and row.n_test == 2
    assert row.bytes_up < 1_000_000 and row.bytes_down > 0 and row.server_ms > 0
    assert row.context_bytes > row.context_bytes_private > 0 and "128-bit" in row.security


def test_cnn_server_needs_public_context(cnn, cnn_ctx):
    square_cnn, _ = cnn
    image = blob_images(1, seed=3)[0][0]
    upload, windows = ecnn.client_encrypt_image(cnn_ctx, image, square_cnn.spec)
    with pytest.raises(ckks.SecretKeyOnServerError):
        ecnn.server_cnn(cnn_ctx, upload, windows, square_cnn)
    public = ckks.load_context(ckks.public_context(cnn_ctx))  # what the server receives
    assert not public.has_secret_key()
    reply = ecnn.server_cnn(public, upload, windows, square_cnn)
    with pytest.raises(ckks.MissingSecretKeyError):
        ecnn.client_decrypt_scores(public, reply)
    assert ecnn.client_decrypt_scores(cnn_ctx, reply).shape == (2,)


def test_scores_that_would_wrap_are_refused(cnn, cnn_ctx):
    square_cnn, _ = cnn
    loud = ecnn.SquareCNN(**{**square_cnn.__dict__, "w2": square_cnn.w2 * 1e3, "b2": square_cnn.b2 * 1e3})
    with pytest.raises(OutputRangeError, match="holds \\|x\\| < 16"):
        ecnn.encrypted_cnn_cost(cnn_ctx, loud, blob_images(2, seed=4)[0], np.array([0, 1]), progress=False)


@settings(max_examples=5, deadline=None)
@given(size=st.integers(29, 64))
def test_oversize_images_are_refused(size):
    with pytest.raises(ImageTooLargeError, match=rf"{size}x{size}.*28x28"):
        ecnn.check_images(np.zeros((1, size, size), np.uint8), SPEC)


def test_cnn_input_validation():
    with pytest.raises(InputShapeError, match="dtype int64"):
        ecnn.check_images(np.zeros((1, 28, 28), np.int64), SPEC)
    with pytest.raises(InputShapeError, match="floats in \\[0, 1\\]"):
        ecnn.check_images(np.full((28, 28), 2.0), SPEC)
    with pytest.raises(InputShapeError, match="20x20"):
        ecnn.check_images(np.zeros((20, 20), np.uint8), SPEC)
    assert ecnn.max_image_size(ckks.CNN_8192, 7, 3) == 30 < 32
    assert ecnn.max_image_size(ckks.CNN_8192) == 39  # the default 8x8/4: 8x8 windows of 64 slots fill 4096
    assert ecnn.required_slots(32, 7, 3) > ckks.CNN_8192.n_slots >= ecnn.required_slots(28, 7, 3)


@pytest.fixture(scope="module")
def mlp_case():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    raw = rng.normal(size=(240, 8)) + 1.5 * np.eye(3, 8)[labels]
    feature_range = FeatureRange.fit(raw[:200], margin=0.25)
    model = emlp.train_keras_mlp(feature_range.transform(raw[:200]), labels[:200], hidden=6, epochs=15, seed=0)
    return emlp.mlp_from_keras(model, feature_range), raw[200:], labels[200:]


def test_encrypted_mlp_matches_twin(mlp_case):
    mlp, raw, labels = mlp_case
    ctx = ckks.make_context(ckks.MLP_8192)
    row, scores = emlp.encrypted_mlp_cost(ctx, mlp, raw[:6], labels[:6], ckks.MLP_8192, progress=False)
    twin = emlp.plain_mlp_scores(mlp, mlp.feature_range.transform(raw[:6]))
    assert np.abs(scores - twin).max() < 1e-2
    sure = confident(twin, 2e-2)
    assert (scores.argmax(1)[sure] == twin.argmax(1)[sure]).all() and sure.sum() >= 5
    assert row.rung == 3 and row.n_test == 6 and row.mismatches_vs_twin <= 6 - sure.sum()
    public = ckks.load_context(ckks.public_context(ctx))
    reply = emlp.server_mlp(public, emlp.client_encrypt_features(ctx, mlp, raw[0]), mlp)
    with pytest.raises(ckks.MissingSecretKeyError):
        emlp.client_decrypt_scores(public, reply)
    with pytest.raises(ckks.SecretKeyOnServerError):
        emlp.server_mlp(ctx, emlp.client_encrypt_features(ctx, mlp, raw[0]), mlp)


def test_out_of_range_features_name_the_feature(mlp_case):
    mlp, raw, _ = mlp_case
    bad = raw[:2].copy()
    bad[1, 3] = mlp.feature_range.high[3] + 1.0
    with pytest.raises(FeatureRangeError, match=r"raw\[1, 3\].*feature 3"):
        emlp.client_encrypt_features(ckks.make_context(ckks.MLP_8192, galois=False), mlp, bad)
    with pytest.raises(InputShapeError, match="7 features"):
        mlp.feature_range.transform(raw[:, :7])


@settings(max_examples=10, deadline=None)
@given(data=st.lists(st.lists(st.floats(-100, 100), min_size=3, max_size=3), min_size=2, max_size=10))
def test_feature_range_maps_training_data_into_unit_interval(data):
    x = np.array(data)
    scaled = FeatureRange.fit(x, margin=0.1).transform(x)
    assert scaled.min() >= 0 and scaled.max() <= 1


def _separable(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, d))
    return x, (x[:, 0] - 0.5 * x[:, 1] > 0).astype(int)


def test_encrypted_training_matches_plaintext_twin(train_ctx):
    x, y = _separable(12, 4, seed=0)
    x_test, y_test = _separable(40, 4, seed=1)
    ctx = train_ctx[0]
    row, extra = etrain.encrypted_training_cost(ctx, x, y, x_test, y_test, epochs=2, lr=4.0, seed=0)
    run, twin = extra["runs"][0], extra["twin"][0]
    assert extra["max_weight_gap"] < 0.05 and len(run.key_holder_log) == 2 and len(run.seconds_per_epoch) == 2
    margin = np.abs(twin.scores(x_test)) > 0.3
    assert (etrain.predict_ovr([run.model], x_test)[margin] == etrain.predict_ovr([twin], x_test)[margin]).all()
    assert row.rung == 5 and row.mismatches_vs_twin <= int((~margin).sum())
    assert row.twin_accuracy > 0.6  # the plaintext twin learns the task too


def test_training_server_refuses_private_context_and_key_holder_sees_weights_only(train_ctx):
    x, y = _separable(6, 3, seed=2)
    ctx, public = train_ctx
    data = etrain.server_load_dataset(public, etrain.client_encrypt_dataset(ctx, x, y))
    w, b = etrain.key_holder_encrypt(ctx, etrain.init_logreg(3))
    with pytest.raises(ckks.SecretKeyOnServerError):
        etrain.server_epoch(ctx, data, w, b, lr=1.0)
    new_w, new_b = etrain.server_epoch(public, data, w, b, lr=1.0)
    with pytest.raises(ckks.MissingSecretKeyError):
        ckks.decrypt(ckks.vector_from(public, new_w))
    seen, _, _ = etrain.key_holder_refresh(ctx, new_w, new_b)
    expected = etrain.plain_epoch(x, y.astype(float), etrain.init_logreg(3), lr=1.0)
    assert np.allclose(seen.w, expected.w, atol=0.05) and abs(seen.b - expected.b) < 0.05


def test_one_vs_rest_three_classes(train_ctx):
    rng = np.random.default_rng(3)
    labels = np.arange(6) % 3
    x = 0.2 * rng.uniform(-1, 1, (6, 3)) + 0.6 * np.eye(3)[labels]
    runs = etrain.encrypted_train_ovr(train_ctx[0], x, labels, epochs=1, lr=4.0, public_ctx=train_ctx[1])
    twins = [etrain.plain_train(x, (labels == c).astype(float), 1, 4.0)[0] for c in range(3)]
    assert len(runs) == 3
    for run, twin in zip(runs, twins):
        assert np.allclose(run.model.w, twin.w, atol=0.1)
    with pytest.raises(InputShapeError, match="labels in"):
        etrain.plain_train(x, labels, 1, 1.0)
