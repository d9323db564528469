"""Rung 4 one image at a time (replicated slot layout): encrypted scores equal the plaintext twin for random
models and images, and what the layout or the keys cannot take is refused before any encrypted work."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.crypto.ckks import MissingGaloisKeysError
from ppdl_utils.crypto.ckks_slots import SLOTS_CNN_8192, SlotKeyHolder, SlotServer, power_of_two_steps
from ppdl_utils.errors import PPDLError, WrongKeyError
from ppdl_utils.learning import encrypted_cnn as ecnn
from ppdl_utils.learning.encrypted_common import InputShapeError, OutputRangeError
from ppdl_utils.learning.latency_cnn import (
    SlotLayoutError,
    client_encrypt_image,
    decrypt_scores,
    latency_layout,
    prepare_cnn,
    server_latency_cnn,
    single_image_scores,
)

#: |encrypted - twin| for scores of magnitude ~1 at scale 2^32 (measured: a few 1e-6)
ATOL = 5e-5


@pytest.fixture(scope="module")
def parties():
    """One key pair with every power-of-two rotation: it serves the layout of any spec."""
    key_holder = SlotKeyHolder(SLOTS_CNN_8192, power_of_two_steps(SLOTS_CNN_8192.n_slots))
    return key_holder, SlotServer(SLOTS_CNN_8192, key_holder.evaluation_keys(), key_holder.fingerprint)


@pytest.fixture(scope="module")
def foreign():
    """A second, unrelated key holder (one rotation key only: cheap)."""
    return SlotKeyHolder(SLOTS_CNN_8192, [1])


def random_cnn(spec: ecnn.CNNSpec, rng: np.random.Generator) -> ecnn.SquareCNN:
    f, k, h, c = spec.n_filters, spec.kernel, spec.hidden, spec.n_classes
    return ecnn.SquareCNN(spec, rng.normal(0, 1.0 / k, (f, k, k)), rng.normal(0, 0.1, f),
                          rng.normal(0, 0.3 / np.sqrt(f * spec.windows), (f * spec.windows, h)), rng.normal(0, 0.1, h),
                          rng.normal(0, 1.0 / np.sqrt(h), (h, c)), rng.normal(0, 0.1, c))


@settings(max_examples=8, deadline=None)
@given(geometry=st.sampled_from([(12, 4, 4), (16, 4, 3), (20, 8, 4), (28, 8, 4), (28, 7, 3)]),
       filters=st.integers(1, 3), hidden=st.integers(1, 64), classes=st.integers(2, 3), seed=st.integers(0, 2**31))
def test_scores_equal_the_twin_for_random_models_and_images(parties, geometry, filters, hidden, classes, seed):
    size, kernel, stride = geometry
    spec = ecnn.CNNSpec(image_size=size, kernel=kernel, stride=stride, n_filters=filters, hidden=hidden,
                        n_classes=classes)
    rng = np.random.default_rng(seed)
    try:
        latency_layout(spec)
    except SlotLayoutError:  # e.g. 7x7/3 windows (49) x 3 filters: more conv outputs than a conv block holds
        block = 4096 // max(2, 1 << (hidden - 1).bit_length())
        assert filters * spec.windows > 2 * (block - classes + 1)
        return
    cnn = random_cnn(spec, rng)
    images = rng.integers(0, 256, (2, size, size)).astype(np.uint8)
    scores, costs = single_image_scores(*parties, cnn, images)
    np.testing.assert_allclose(scores, ecnn.plain_cnn_scores(cnn, images), atol=ATOL)
    assert len(costs) == 2 and all(c.server_s > 0 and c.bytes_up > 0 and c.bytes_down > 0 for c in costs)


@pytest.mark.parametrize("classes", [2, 3])
def test_default_cnn_one_round_trip_per_image(parties, classes):
    spec = ecnn.CNNSpec(n_classes=classes)
    layout = latency_layout(spec)
    assert (layout.n_uploads, layout.block, layout.rotations_per_image) == (2, 64, 18)
    assert layout.rotation_steps == power_of_two_steps(4096)  # 1, 2, ..., 2048: 12 keys
    key_holder, server = parties
    rng = np.random.default_rng(classes)
    cnn = random_cnn(spec, rng)
    prepared = prepare_cnn(server, cnn)
    before = dict(server.operations)
    images = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    twin = ecnn.plain_cnn_scores(cnn, images)
    for image, expected in zip(images, twin):
        upload = client_encrypt_image(key_holder, image, layout)
        assert len(upload) == 2
        result = server_latency_cnn(server, prepared, upload)
        assert len(result) == 1  # every class in one ciphertext
        np.testing.assert_allclose(decrypt_scores(key_holder, result, classes), expected, atol=ATOL)
    assert server.operations["rotations"] - before["rotations"] == 3 * 18
    assert server.operations["rescales"] - before["rescales"] == 3 * 5


def test_wrong_image_size_is_refused_before_encryption(parties):
    key_holder, server = parties
    cnn = random_cnn(ecnn.CNNSpec(), np.random.default_rng(0))
    before = dict(server.operations)
    for bad in (np.zeros((20, 20), np.uint8), np.zeros((2, 32, 32), np.uint8), np.full((28, 28), 1.5)):
        with pytest.raises(InputShapeError):
            single_image_scores(key_holder, server, cnn, bad)
    with pytest.raises(InputShapeError):
        client_encrypt_image(key_holder, np.zeros((64, 64), np.uint8), latency_layout(cnn.spec))
    assert server.operations == before


@pytest.mark.parametrize("spec, words", [
    (ecnn.CNNSpec(n_filters=4), "filters x windows = 4 x 36"),        # 144 conv outputs > 2 x 63
    (ecnn.CNNSpec(n_filters=3, hidden=65), "hidden=65"),             # 128 hidden blocks of 32 slots
    (ecnn.CNNSpec(image_size=28, kernel=4, stride=2), "conv outputs"),  # 13 x 13 windows
])
def test_a_spec_that_does_not_fit_the_blocks_is_named(parties, spec, words):
    with pytest.raises(SlotLayoutError, match=words) as caught:
        latency_layout(spec)
    assert isinstance(caught.value, PPDLError)
    cnn = random_cnn(spec, np.random.default_rng(0))
    with pytest.raises(SlotLayoutError):
        single_image_scores(*parties, cnn, np.zeros((1, 28, 28), np.uint8))


def test_weights_that_do_not_match_their_spec_are_refused(parties):
    cnn = random_cnn(ecnn.CNNSpec(), np.random.default_rng(0))
    cnn.w1 = cnn.w1[:100]
    with pytest.raises(InputShapeError, match="w1"):
        prepare_cnn(parties[1], cnn)


def test_scores_beyond_the_last_prime_are_refused(parties):
    cnn = random_cnn(ecnn.CNNSpec(), np.random.default_rng(0))
    cnn.w2 = cnn.w2 * 1e4
    with pytest.raises(OutputRangeError):
        single_image_scores(*parties, cnn, np.full((1, 28, 28), 255, np.uint8))


def test_a_foreign_key_is_refused(parties, foreign):
    key_holder, server = parties
    cnn = random_cnn(ecnn.CNNSpec(), np.random.default_rng(0))
    prepared = prepare_cnn(server, cnn)
    image = np.random.default_rng(1).integers(0, 256, (28, 28)).astype(np.uint8)
    before = dict(server.operations)
    with pytest.raises(WrongKeyError):  # the server refuses an upload under another key, unopened
        server_latency_cnn(server, prepared, client_encrypt_image(foreign, image, prepared.layout))
    assert server.operations == before
    result = server_latency_cnn(server, prepared, client_encrypt_image(key_holder, image, prepared.layout))
    with pytest.raises(WrongKeyError):  # and another key holder refuses to decrypt the result
        decrypt_scores(foreign, result, 2)
    with pytest.raises(WrongKeyError):
        single_image_scores(foreign, server, cnn, image)


def test_missing_rotation_keys_are_named(foreign):
    server = SlotServer(SLOTS_CNN_8192, foreign.evaluation_keys(), foreign.fingerprint)
    cnn = random_cnn(ecnn.CNNSpec(), np.random.default_rng(0))
    with pytest.raises(MissingGaloisKeysError, match="2048"):
        prepare_cnn(server, cnn)
