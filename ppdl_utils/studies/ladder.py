"""The privacy ladder's encrypted rungs on one footing: the same client features for rungs 2, 3 and 5, every
test image of notebook 03's split, batched.  Notebook 08 and ``bench/bench_privacy_ladder.py`` call it.

* rung 2: a logistic-regression head trained in the clear by the server, run on the client's encrypted
  features under Paillier (images packed in plaintext slots) and under LWE (a public PCA projection of the
  features, within LWE's noise budget) (:mod:`ppdl_utils.learning.linear_rung`);
* rung 3: an MLP head (dense, x², dense) owned by the server, on the client's encrypted features, batched
  (:mod:`ppdl_utils.learning.batched_rungs`, up to 4,096 images per ciphertext); its first layer is
  quantized to ``mlp_weight_bits`` per hidden unit, so the server pays one product per distinct weight;
* rung 4: the CNN on encrypted 28-px pixels, batched the same way (no backbone: the pixels themselves);
* rung 5: the logistic-regression head trained by the server on the encrypted features of the whole
  training split and run on encrypted test features (:mod:`ppdl_utils.studies.private_pipeline`).

Each row holds what the ladder table needs: accuracy over the whole test split (its CI is computed by
``reporting.ladder``), the server's CPU milliseconds per image amortized over the batch, bytes per image,
the security level and the mismatches against the plaintext twin, and the per-image ``predictions`` with
their ``y_true`` and ``split_seed`` for the paired test against plain (``reporting.ladder`` drops them from
the saved table).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto.ckks_columns import COLUMNS_CNN_8192, COLUMNS_MLP_8192, ColumnKeyHolder, ColumnServer
from ppdl_utils.crypto.paillier import PaillierPrivateKey, generate_keypair, security_bits
from ppdl_utils.data.splits import stratified_split
from ppdl_utils.learning import encrypted_cnn as rung4
from ppdl_utils.learning import encrypted_mlp as rung3
from ppdl_utils.learning import linear_rung as rung2
from ppdl_utils.learning.batched_rungs import batched_scores
from ppdl_utils.learning.encrypted_common import FeatureRange, OutputRangeError, macro_f1
from ppdl_utils.learning.private_head import predictions_from_scores
from ppdl_utils.learning.private_inference import LWE_INFERENCE
from ppdl_utils.studies.private_pipeline import run_split

__all__ = ["batched_row", "linear_rows", "RungModels", "train_square_cnn", "train_rung_models", "encrypted_rungs"]

SECURITY_CKKS = "128-bit classical (CKKS, HE standard)"


def batched_row(rung: int, name: str, params, model, inputs: np.ndarray, labels: np.ndarray,
                twin_scores: np.ndarray) -> dict:
    """Classify every input encrypted in one batch (two if more than N/2) and compare with the twin."""
    if np.abs(twin_scores).max() >= params.output_bound:  # it would wrap around the last prime: garbage
        raise OutputRangeError(f"rung {rung}: the twin's scores reach {np.abs(twin_scores).max():.3g}; "
                               f"{params.name} decrypts |score| < {params.output_bound:g}")
    key_holder = ColumnKeyHolder(params)
    server = ColumnServer(params, key_holder.public_keys(), key_holder.fingerprint)
    scores, costs = batched_scores(key_holder, server, model, inputs, min(len(inputs), params.n_slots))
    n = len(inputs)
    predictions = scores.argmax(axis=1)
    return {"rung": rung, "name": f"rung {rung}: {name}", "accuracy": float((predictions == labels).mean()),
            "n_test": n, "macro_f1": macro_f1(labels, predictions),
            "encrypt_ms": 1000 * sum(c.client_encrypt_s for c in costs) / n,
            "server_ms": 1000 * sum(c.server_s for c in costs) / n,
            "decrypt_ms": 1000 * sum(c.client_decrypt_s for c in costs) / n,
            "bytes_up": sum(c.bytes_up for c in costs) / n, "bytes_down": sum(c.bytes_down for c in costs) / n,
            "context_bytes": len(key_holder.public_keys()), "security": SECURITY_CKKS,
            "server_learns": "the batch size and input width; no value (RLWE)",
            "mismatches_vs_twin": int((predictions != twin_scores.argmax(axis=1)).sum()),
            "twin_accuracy": float((twin_scores.argmax(axis=1) == labels).mean()),
            "max_score_error": float(np.abs(scores - twin_scores).max()),
            "min_twin_margin": float(np.diff(np.sort(twin_scores, axis=1)[:, -2:], axis=1).min()),
            "batch_latency_ms": max(c.latency_ms for c in costs), "predictions": predictions, "y_true": labels}


def _linear_row(run: rung2.LinearRun, name: str, labels: np.ndarray, security: str) -> dict:
    twin = predictions_from_scores(run.twin_scores)
    return {"rung": 2, "name": f"rung 2: {name}", "accuracy": float((run.predictions == labels).mean()),
            "n_test": run.n, "macro_f1": macro_f1(labels, run.predictions), **run.per_image(), "security": security,
            "server_learns": "the batch size and input width; no value (DCR / LWE)",
            "mismatches_vs_twin": run.mismatches_vs_twin, "twin_accuracy": float((twin == labels).mean()),
            "max_score_error": run.max_score_error, "images_per_ciphertext": run.images_per_ciphertext,
            "predictions": run.predictions, "y_true": labels}


def linear_rows(features: np.ndarray, labels: np.ndarray, hashes: list[str], split_seed: int = 0,
                paillier_key: PaillierPrivateKey | None = None, lwe_params: lwe.LWEParams = LWE_INFERENCE,
                lwe_dim: int = 32, lwe_feature_bits: int = 5, seed: int = 0) -> list[dict]:
    """Rung 2's rows (Paillier, LWE) on notebook 03's split ``split_seed``: a head trained in the clear on
    the training split, every test image classified encrypted and checked against its integer twin.

    ``paillier_key`` None draws a fresh 2048-bit key.  The Paillier row also holds the float head's
    accuracy, how many predictions differ from it, and how many test images are near-ties (float margin
    within the quantization's error bound): every difference must be one of them."""
    split = stratified_split(labels, hashes, fractions=(0.8, 0.1, 0.1), seed=split_seed)
    train, test = split["train"], split["test"]
    y_test = labels[test]
    key = paillier_key if paillier_key is not None else generate_keypair()
    head = rung2.fit_integer_head(features[train], labels[train], seed=seed)
    run = rung2.run_paillier_packed(head, key, features[test])
    bits = key.public.bits
    paillier = _linear_row(run, f"linear head, Paillier, {run.images_per_ciphertext} images per ciphertext",
                           y_test, f"{security_bits(bits)}-bit classical (Paillier {bits}, DCR), randomized"
                           if security_bits(bits) else f"none: toy key (Paillier {bits}, teaching only)")
    float_scores = head.float_scores(features[test])
    float_pred = predictions_from_scores(float_scores)
    bound = head.error_bound(features[test])
    if float_scores.shape[1] == 1:
        margins, tolerance = np.abs(float_scores[:, 0]), bound[:, 0]
    else:  # the top two scores can each move by their bound
        margins, tolerance = np.diff(np.sort(float_scores, axis=1)[:, -2:], axis=1)[:, 0], 2 * bound.max(axis=1)
    paillier.update({"float_head_accuracy": float((float_pred == y_test).mean()),
                     "float_head_mismatches": int((run.predictions != float_pred).sum()),
                     "near_ties": int((margins <= tolerance).sum()), "min_twin_margin": float(margins.min())})

    lwe_head = rung2.fit_lwe_head(features[train], labels[train], features[test], y_test, dim=lwe_dim,
                                  feature_bits=lwe_feature_bits, params=lwe_params, seed=seed)
    lwe_run = rung2.run_lwe_batched(lwe_head, lwe.keygen(lwe_params), features[test])
    p = lwe_params
    lwe_row = _linear_row(lwe_run, f"linear head, LWE, PCA-{lwe_head.projection.components.shape[0]} of the "
                          "features", y_test, f"~{p.security_bits}-bit classical (LWE n={p.n}, "
                          f"log q={(p.q - 1).bit_length()}), randomized")
    lwe_row["float_head_accuracy"] = lwe_head.float_accuracy
    return [paillier, lwe_row]


@dataclass
class RungModels:
    """The server's rung-3 MLP and rung-4 CNN, trained in the clear on the training split, and the test
    inputs the client encrypts for them."""

    mlp: rung3.SquareMLP            # the served model: first layer quantized (its twin is exact)
    cnn: rung4.SquareCNN
    test_features: np.ndarray       # scaled to [0, 1] by the MLP's fitted range (clipped by the client)
    test_images: np.ndarray         # uint8, rung 4's input size
    y_test: np.ndarray
    relu_twin_accuracy: float | None  # the same CNN with ReLU, trained in the clear (None: not trained)
    mlp_float_accuracy: float         # the MLP before quantization, in the clear


def train_square_cnn(train_images: np.ndarray, train_labels: np.ndarray, n_classes: int, epochs: int = 15,
                     seed: int = 0) -> rung4.SquareCNN:
    """Rung 4's model: the x² CNN trained in the clear on the training split's images, its last layer
    calibrated on them."""
    spec = rung4.CNNSpec(image_size=train_images.shape[1], n_classes=n_classes)
    net = rung4.train_keras_cnn(train_images, train_labels, spec, "square", epochs=epochs, seed=seed)
    return rung4.cnn_from_keras(net, spec, calibration=train_images)


def train_rung_models(features: np.ndarray, small_images: np.ndarray, labels: np.ndarray, hashes: list[str],
                      n_classes: int, split_seed: int = 0, mlp_hidden: int = 8, mlp_epochs: int = 30,
                      cnn_epochs: int = 15, seed: int = 0, relu_twin: bool = True,
                      mlp_weight_bits: int = 8) -> RungModels:
    """Train rungs 3 and 4 on notebook 03's split ``split_seed``; ``relu_twin`` also trains the ReLU CNN."""
    split = stratified_split(labels, hashes, fractions=(0.8, 0.1, 0.1), seed=split_seed)
    train, test = split["train"], split["test"]
    y_train, y_test = labels[train], labels[test]
    feature_range = FeatureRange.fit(features[train])
    # a test feature beyond the widened training range is clipped by the client (it would overflow)
    test_scaled = feature_range.transform(np.clip(features[test], feature_range.low, feature_range.high))
    mlp_net = rung3.train_keras_mlp(feature_range.transform(features[train]), y_train, hidden=mlp_hidden,
                                    n_classes=n_classes, epochs=mlp_epochs, seed=seed)
    cnn = train_square_cnn(small_images[train], y_train, n_classes, cnn_epochs, seed)
    relu_accuracy = None
    if relu_twin:
        relu_net = rung4.train_keras_cnn(small_images[train], y_train, cnn.spec, "relu", epochs=cnn_epochs,
                                         seed=seed)
        relu_accuracy = float((relu_net.predict(small_images[test][..., None] / 255.0, verbose=0).argmax(1)
                               == y_test).mean())
    float_mlp = rung3.mlp_from_keras(mlp_net, feature_range)
    float_accuracy = float((rung3.plain_mlp_scores(float_mlp, test_scaled).argmax(1) == y_test).mean())
    return RungModels(rung3.quantize_first_layer(float_mlp, mlp_weight_bits), cnn, test_scaled, small_images[test],
                      y_test, relu_accuracy, float_accuracy)


def encrypted_rungs(dataset_name: str, features: np.ndarray, extractor: str, small_images: np.ndarray,
                    labels: np.ndarray, hashes: list[str], n_classes: int, split_seed: int = 0, mlp_hidden: int = 8,
                    mlp_epochs: int = 30, cnn_epochs: int = 15, l2: float = 1e-2, max_steps: int = 60,
                    seed: int = 0, progress: bool = True, paillier_key: PaillierPrivateKey | None = None,
                    lwe_dim: int = 32, mlp_weight_bits: int = 8) -> list[dict]:
    """Rows for rungs 2-5 on notebook 03's split ``split_seed`` (the whole test split), each with its
    per-image predictions (see the module docstring)."""
    rows = linear_rows(features, labels, hashes, split_seed, paillier_key, lwe_dim=lwe_dim, seed=seed)
    models = train_rung_models(features, small_images, labels, hashes, n_classes, split_seed, mlp_hidden, mlp_epochs,
                               cnn_epochs, seed, mlp_weight_bits=mlp_weight_bits)
    rows.append(batched_row(3, f"MLP head on encrypted features, batched (hidden {mlp_hidden}, {mlp_weight_bits}-bit "
                               "first layer)", COLUMNS_MLP_8192, models.mlp, models.test_features, models.y_test,
                            rung3.plain_mlp_scores(models.mlp, models.test_features)))
    rows[-1]["float_model_accuracy"] = models.mlp_float_accuracy
    row = batched_row(4, f"CNN on encrypted {small_images.shape[1]}-px pixels, batched", COLUMNS_CNN_8192,
                      models.cnn, models.test_images, models.y_test,
                      rung4.plain_cnn_scores(models.cnn, models.test_images))
    row["relu_twin_accuracy"] = models.relu_twin_accuracy
    rows.append(row)

    trained = run_split(dataset_name, features, labels, hashes, n_classes, extractor, split_seed, None, l2=l2,
                        max_steps=max_steps, progress=progress)
    rows.append({"rung": 5, "name": f"rung 5: head trained + run encrypted (n={trained.n_train})",
                 "accuracy": trained.private_accuracy, "n_test": trained.n_test,
                 "server_ms": trained.inference_server_ms_per_image,
                 "encrypt_ms": trained.inference_client_ms_per_image,
                 "bytes_up": trained.inference_bytes_up_per_image,
                 "bytes_down": trained.inference_bytes_down_per_image, "security": "128-bit classical (CKKS, N=4096)",
                 "server_learns": "sizes only (examples, features, classes, steps)",
                 "mismatches_vs_twin": trained.mismatches_vs_twin, "twin_accuracy": trained.clear_trained_accuracy,
                 "training_server_s": trained.server_training_cpu_s, "training_steps": trained.training_steps,
                 "predictions": trained.predictions, "y_true": models.y_test})
    for row in rows:
        row["split_seed"] = split_seed
    return rows
