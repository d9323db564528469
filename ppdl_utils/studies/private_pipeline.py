"""The private pipeline study: a head trained and evaluated on ciphertexts, next to the plain model.

For each split seed: the client's features of the training split are encrypted once; the server fits a
logistic-regression head on them (:func:`ppdl_utils.learning.private_head.fit_logistic_head` through an
:class:`EncryptedOracle`); the same optimizer runs in the clear (the twin); the test split is classified
by batched encrypted inference and compared with the twin (same weights in float64) and with the plain
fine-tuned MobileNetV2 of notebook 03 on the same test images (McNemar's exact test).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ppdl_utils.crypto.ckks_packed import PACKED_4096, KeyHolder, PackedParams, PackedServer, sampled_bytes
from ppdl_utils.data.splits import stratified_split
from ppdl_utils.errors import DataError
from ppdl_utils.learning.private_head import (
    ClearOracle,
    EncryptedOracle,
    augment,
    encrypted_predict,
    fit_logistic_head,
    predictions_from_scores,
)
from ppdl_utils.outputs import run_dir
from ppdl_utils.records import mcnemar_exact, wilson_interval

__all__ = ["SplitResult", "mcnemar_exact", "plain_predictions", "run_split", "cost_against_n"]


@dataclass
class SplitResult:
    """One row of ``results/*private_pipeline*.csv``."""

    dataset: str
    split_seed: int
    n_train: int
    n_test: int
    n_features: int
    plain_accuracy: float
    private_accuracy: float
    private_ci95_low: float
    private_ci95_high: float
    clear_trained_accuracy: float
    mismatches_vs_twin: int
    min_abs_margin: float
    max_score_error: float
    mcnemar_p_vs_plain: float
    private_only_correct: int
    plain_only_correct: int
    l2: float
    max_steps: int
    training_steps: int
    server_training_cpu_s: float
    client_training_cpu_s: float
    training_bytes_up: int
    training_bytes_down: int
    features_upload_bytes: int
    inference_server_ms_per_image: float
    inference_client_ms_per_image: float
    inference_bytes_up_per_image: float
    inference_bytes_down_per_image: float
    ckks: str
    extractor: str
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)  # per test image, not a CSV column


def plain_predictions(results_dir: "str | Path", run: str, test_labels: np.ndarray) -> np.ndarray:
    """Notebook 03's plain-model predictions on the test split of ``run`` (checked against the labels)."""
    path = run_dir(results_dir, run) / "03_plain_predictions.csv"
    if not path.is_file():
        raise DataError(f"{path} does not exist: run notebook 03 with the plain regime for this split first "
                        f"(make 03_training DATA=... PARAMFILE=params/plain.yaml PARAMS='-p split_seed S')")
    table = pd.read_csv(path).sort_values("test_index")
    if len(table) != len(test_labels) or not np.array_equal(table.y_true.to_numpy(), test_labels):
        raise DataError(f"{path}: its {len(table)} test labels are not this split's {len(test_labels)}; "
                        f"another split seed or data folder")
    return table.y_pred.to_numpy()


def run_split(dataset_name: str, features: np.ndarray, labels: np.ndarray, hashes: list[str], n_classes: int,
              extractor: str, split_seed: int, plain_pred: np.ndarray | None, l2: float = 1e-2,
              max_steps: int = 60, params: PackedParams = PACKED_4096, progress: bool = True) -> SplitResult:
    """Encrypted training and inference on one split, with its clear twin and the plain comparison."""
    split = stratified_split(labels, hashes, fractions=(0.8, 0.1, 0.1), seed=split_seed)
    train, test = split["train"], split["test"]
    x_train, y_train, x_test, y_test = features[train], labels[train], features[test], labels[test]
    low, high = x_train.min(axis=0), x_train.max(axis=0)

    key_holder = KeyHolder(params)
    server = PackedServer(params, key_holder.public_keys(), key_holder.fingerprint)
    layout = key_holder.layout(x_train.shape[1] + 1)
    start = time.process_time()
    packed_train = key_holder.encrypt_matrix(augment(x_train), layout)
    packed_train.tag = extractor
    encrypt_s = time.process_time() - start
    absolute = np.abs(augment(x_train))
    oracle = EncryptedOracle(key_holder, server, packed_train, extractor, absolute.sum(axis=0).max(),
                             absolute.max(axis=0))
    head, log = fit_logistic_head(oracle, y_train, n_classes, l2=l2, max_steps=max_steps, extractor=extractor,
                                  feature_low=low, feature_high=high, progress=progress)
    twin_head, _ = fit_logistic_head(ClearOracle(x_train), y_train, n_classes, l2=l2, max_steps=max_steps,
                                     extractor=extractor, progress=False)

    scores, costs = encrypted_predict(key_holder, server, head, x_test, extractor)
    private_pred = predictions_from_scores(scores)
    twin_scores = head.scores(x_test)
    twin_pred = predictions_from_scores(twin_scores)
    margins = np.abs(twin_scores[:, 0]) if twin_scores.shape[1] == 1 else \
        np.diff(np.sort(twin_scores, axis=1)[:, -2:], axis=1)[:, 0]
    correct = private_pred == y_test
    low95, high95 = wilson_interval(int(correct.sum()), len(y_test))
    if plain_pred is not None:
        p_value, private_only, plain_only = mcnemar_exact(correct, plain_pred == y_test)
        plain_accuracy = float((plain_pred == y_test).mean())
    else:
        p_value, private_only, plain_only, plain_accuracy = float("nan"), 0, 0, float("nan")
    n_test = len(y_test)
    return SplitResult(
        dataset=dataset_name, split_seed=split_seed, n_train=len(train), n_test=n_test,
        n_features=x_train.shape[1], plain_accuracy=plain_accuracy, private_accuracy=float(correct.mean()),
        private_ci95_low=low95, private_ci95_high=high95,
        clear_trained_accuracy=float((twin_head.predict(x_test) == y_test).mean()),
        mismatches_vs_twin=int((private_pred != twin_pred).sum()), min_abs_margin=float(margins.min()),
        max_score_error=float(np.abs(scores - twin_scores).max()), mcnemar_p_vs_plain=p_value,
        private_only_correct=private_only, plain_only_correct=plain_only, l2=l2, max_steps=max_steps,
        training_steps=log.steps, server_training_cpu_s=oracle.log.server_cpu_s,
        client_training_cpu_s=oracle.log.client_cpu_s + encrypt_s,
        training_bytes_up=oracle.log.bytes_up, training_bytes_down=oracle.log.bytes_down,
        features_upload_bytes=sampled_bytes(packed_train.ciphertexts),
        inference_server_ms_per_image=1000 * costs["server_s"] / n_test,
        inference_client_ms_per_image=1000 * (costs["client_encrypt_s"] + costs["client_decrypt_s"]) / n_test,
        inference_bytes_up_per_image=costs["bytes_up"] / n_test,
        inference_bytes_down_per_image=costs["bytes_down"] / n_test,
        ckks=params.describe(), extractor=extractor, predictions=private_pred)


def as_frame(results: list[SplitResult]) -> pd.DataFrame:
    return pd.DataFrame([{k: v for k, v in asdict(r).items() if k != "predictions"} for r in results])


def cost_against_n(features: np.ndarray, labels: np.ndarray, n_classes: int, extractor: str,
                   sizes: list[int], steps: int = 3, params: PackedParams = PACKED_4096, seed: int = 0
                   ) -> pd.DataFrame:
    """Server CPU seconds per training step against the training-set size (``steps`` steps each)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        if n > len(features):
            raise DataError(f"sizes: {n} training examples asked, {len(features)} available")
        pick = rng.permutation(len(features))[:n]
        key_holder = KeyHolder(params)
        server = PackedServer(params, key_holder.public_keys(), key_holder.fingerprint)
        packed = key_holder.encrypt_matrix(augment(features[pick]), key_holder.layout(features.shape[1] + 1))
        packed.tag = extractor
        oracle = EncryptedOracle(key_holder, server, packed, extractor,
                                 np.abs(augment(features[pick])).sum(axis=0).max())
        k = 1 if n_classes == 2 else n_classes
        weights = np.zeros((k, features.shape[1] + 1))
        for _ in range(steps):
            oracle.logits(weights)
            oracle.residual_products(np.full((n, k), 1.0 / n))
        rows.append({"n_train": n, "classes": n_classes, "server_s_per_step": oracle.log.server_cpu_s / steps,
                     "client_s_per_step": oracle.log.client_cpu_s / steps,
                     "bytes_per_step": (oracle.log.bytes_up + oracle.log.bytes_down) / steps})
    return pd.DataFrame(rows)


def client_features(images: np.ndarray, hashes: list[str], weights: "str | Path | None", cache_dir: "str | None",
                    grid: int = 16) -> tuple[np.ndarray, str, str]:
    """The client's features in the clear: multi-block ImageNet MobileNetV2 when weights are given, else
    block-mean pixels (the offline synthetic default).  Returns (features, extractor fingerprint, description)."""
    from ppdl_utils.learning.features import cached_multiblock_features, pixel_features

    if weights:
        features, fingerprint = cached_multiblock_features(images, hashes, weights, cache_dir)
        return features, fingerprint, (f"ImageNet MobileNetV2 (public, frozen), blocks 6/13/16/last pooled, "
                                       f"{images.shape[1]} px, d = {features.shape[1]}")
    features = pixel_features(images, grid)
    return features, f"pixels-{grid}x{grid}-{images.shape[1]}px", f"block-mean pixels, d = {features.shape[1]}"


def plain_run_for(results_dir: "str | Path", run: str, split_seed: int) -> str | None:
    """Notebook 03's run holding the plain model of ``split_seed``: ``run`` itself for seed 0, else
    ``run_plain_split<s>`` (make private_pipeline trains it) or the key-draw run ``run_key1_split<s>``."""
    candidates = [run] if split_seed == 0 else [f"{run}_plain_split{split_seed}", f"{run}_key1_split{split_seed}"]
    for candidate in candidates:
        if (run_dir(results_dir, candidate) / "03_plain_predictions.csv").is_file():
            return candidate
    return None


def run_study(dataset_name: str, features: np.ndarray, labels: np.ndarray, hashes: list[str], n_classes: int,
              extractor: str, split_seeds: list[int], plain_runs: "dict[int, str | None]", results_dir: "str | Path",
              l2: float = 1e-2, max_steps: int = 60, progress: bool = True) -> pd.DataFrame:
    """:func:`run_split` for every split seed; the plain model's predictions come from notebook 03's run
    ``plain_runs[seed]`` (None or a missing file: the plain columns stay empty, and the table says so)."""
    from tqdm.auto import tqdm

    results = []
    for seed in tqdm(split_seeds, desc="split seeds", disable=not progress):
        split = stratified_split(labels, hashes, fractions=(0.8, 0.1, 0.1), seed=seed)
        plain = None
        run = plain_runs.get(seed)
        if run:
            try:
                plain = plain_predictions(results_dir, run, labels[split["test"]])
            except DataError as missing:
                print(f"split seed {seed}: {missing}")
        results.append(run_split(dataset_name, features, labels, hashes, n_classes, extractor, seed, plain,
                                 l2=l2, max_steps=max_steps, progress=progress))
    return as_frame(results)
