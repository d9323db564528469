"""Run every attack of :mod:`ppdl_utils.attacks.algebraic` and :mod:`~ppdl_utils.attacks.substitution`
over a set of test images and tabulate the result.

The threat model is an honest-but-curious server that receives the encrypted images.  What the
attacker may use is stated in every row (:data:`USES`):

* the **public key** (always public);
* **one pixel**: the darkest pixel of an X-ray is its black background, so the attacker assumes
  the darkest pixel of the image has the gray level that the darkest pixel of public X-rays
  typically has (the median minimum of the *training* images).  Schemes whose pixel
  differences are public (Paillier ``fixed_r``, LWE with reused randomness) need nothing else.
  ``known_pixel="oracle"`` instead gives the attacker the true value of pixel (0, 0)
  ("one known pixel"), the textbook threat model;
* **one known image pair**: one *training* image, plain and encrypted under the same key and
  regime (the server stores the encrypted training set; one of its images is public);
* **ciphertext only**, plus a gray-level histogram of public X-rays: estimated from the
  *training* images, never from the targets.

The client side (key holder) encrypts; every attack only receives ciphertexts and public values.
Scores (PSNR, SSIM against the true test images) are computed afterwards by the evaluator.

Every attack is also run on the ``randomized`` regime: there it must fail, and the tables show it.

Main entry points: :func:`attacker_knowledge`, :func:`paillier_attacks`, :func:`rsa_attacks`,
:func:`lwe_attacks`, :func:`run_attack_suite`, :func:`results_table`, :func:`ssim_matrix`,
:func:`leakage_vs_accuracy_table`, :func:`recovered_grid`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ppdl_utils.attacks.algebraic import (
    AttackResult,
    attack_fixed_r,
    attack_lwe_fixed,
    attack_r_one,
    attack_r_one_rendered,
    attack_rsa_dictionary,
)
from ppdl_utils.attacks.substitution import (
    attack_substitution_ciphertext_only,
    known_pair_attack,
)
from ppdl_utils.crypto import lwe as _lwe
from ppdl_utils.crypto import rsa_textbook as _rsa
from ppdl_utils.crypto.paillier import PaillierPrivateKey
from ppdl_utils.crypto.regimes import LEAKS, Regime
from ppdl_utils.images.encryption import ImageEncryptor, validate_images
from ppdl_utils.images.metrics import psnr, ssim
from ppdl_utils.images.render import render

__all__ = [
    "USES",
    "BEATS_PRIOR_MARGIN",
    "prior_run",
    "select_runs",
    "FIGURE_RUNS",
    "BRIEF_COLUMNS",
    "AttackerKnowledge",
    "AttackRun",
    "attacker_knowledge",
    "split_train_test",
    "known_pair_attack",
    "ciphertext_only_attack",
    "attack_r_one_rendered",
    "paillier_attacks",
    "rsa_attacks",
    "lwe_attacks",
    "run_attack_suite",
    "results_table",
    "ssim_matrix",
    "leakage_vs_accuracy_table",
    "recovered_grid",
]

#: What the attacker needs, per attack (the ``attacker_uses`` column).
USES = {
    "public_key": "public key only",
    "one_pixel": "public values + 1 pixel (darkest pixel = typical darkest level of training X-rays)",
    "one_pixel_oracle": "public values + the true value of pixel (0, 0)",
    "known_pair": "one known (plain, encrypted) training image pair",
    "ciphertext_only": "test ciphertexts + gray-level histogram of training X-rays",
}
#: A reconstruction "beats the prior" when its SSIM to the original exceeds, by this margin, the
#: SSIM of the mean training image (what an attacker knows about X-rays without any ciphertext).
#: An absolute SSIM threshold would mislead: X-rays look alike, and the mean training image alone
#: reaches SSIM ~0.6 on the synthetic data.
BEATS_PRIOR_MARGIN = 0.1
_PSNR_CAP = 100.0  # exact images count as 100 dB in means that mix exact and inexact images


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class AttackerKnowledge:
    """What the attacker knows besides ciphertexts and public keys, all from *training* images.

    ``reference_histogram``: 256 weights, the gray-level histogram of the training images.
    ``darkest_level``: the median over training images of their darkest pixel.
    ``pair_plain``: the one training image whose encryption the attacker knows (the known pair).
    ``mean_image``: the mean training image, the best guess without any ciphertext (the prior).
    """

    reference_histogram: np.ndarray
    darkest_level: int
    pair_plain: np.ndarray
    mean_image: np.ndarray
    n_training_images: int

    def __repr__(self) -> str:
        return (f"AttackerKnowledge(n_training_images={self.n_training_images}, darkest_level={self.darkest_level}, "
                f"pair_shape={self.pair_plain.shape})")


@dataclass
class AttackRun:
    """One attack over every test image of one (scheme, regime, input).

    ``images`` are the attacker's reconstructions (N, H, W); ``success`` the attack's own verdict
    per image (from public data only); ``psnr``/``ssim`` the evaluator's scores against the
    originals; ``seconds`` the attack time (encryption excluded) for all images.
    """

    scheme: str
    regime: Regime | None
    input: str
    attack: str
    uses: str
    images: np.ndarray
    success: list[bool]
    coverage: list[float]
    seconds: float
    notes: str = ""
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    beats_prior: list[bool] = field(default_factory=list)
    alternative: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.images)

    @property
    def regime_label(self) -> str:
        return self.regime.label if self.regime is not None else "-"

    @property
    def label(self) -> str:
        return f"{self.scheme} {self.regime.value if self.regime else '-'} · {self.input} · {self.attack}"

    def score(self, originals: np.ndarray, prior: np.ndarray | None = None) -> "AttackRun":
        """Fill ``psnr``/``ssim`` against the true images (the evaluator's step, not the attacker's),
        and ``beats_prior`` against the SSIM of ``prior`` (the mean training image) when given."""
        originals = np.asarray(originals)
        self.psnr = [psnr(o, r) for o, r in zip(originals, self.images)]
        self.ssim = [ssim(o, r) for o, r in zip(originals, self.images)]
        if prior is not None:
            base = [ssim(o, prior) for o in originals]
            self.beats_prior = [s > b + BEATS_PRIOR_MARGIN for s, b in zip(self.ssim, base)]
        if self.alternative is not None:
            alt = [ssim(o, r) for o, r in zip(originals, self.alternative)]
            self.extra["ssim_reversed_median"] = float(np.median(alt))
        return self

    def summary(self) -> dict[str, Any]:
        """One tidy row: means and medians over the test images."""
        p = np.asarray(self.psnr, dtype=np.float64)
        s = np.asarray(self.ssim, dtype=np.float64)
        exact = np.isinf(p)
        capped = np.where(exact, _PSNR_CAP, p)
        return {
            "scheme": self.scheme,
            "regime": self.regime_label,
            "input": self.input,
            "attack": self.attack,
            "attacker_uses": self.uses,
            "n_images": self.n_images,
            "success_rate": float(np.mean(self.success)) if self.success else float("nan"),
            "exact_rate": float(exact.mean()) if p.size else float("nan"),
            "beats_prior_rate": float(np.mean(self.beats_prior)) if self.beats_prior else float("nan"),
            "psnr_mean": float("inf") if p.size and exact.all() else float(capped.mean()) if p.size else float("nan"),
            "psnr_median": float(np.median(p)) if p.size else float("nan"),
            "ssim_mean": float(s.mean()) if s.size else float("nan"),
            "ssim_median": float(np.median(s)) if s.size else float("nan"),
            "coverage_mean": float(np.mean(self.coverage)) if self.coverage else float("nan"),
            "s_per_image": self.seconds / max(self.n_images, 1),
            "notes": self.notes + (f"; reversed contrast: median SSIM {self.extra['ssim_reversed_median']:.2f}"
                                   if "ssim_reversed_median" in self.extra else ""),
        }


# --------------------------------------------------------------------------- attacker's knowledge


def split_train_test(images: np.ndarray, n_test: int, n_train: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random (train, test) subsets of an image stack: the attacker's public images and the targets."""
    images = validate_images(images, "images", batch=True)
    if n_test < 1 or n_train < 1 or n_test + n_train > len(images):
        raise ValueError(f"need n_test >= 1, n_train >= 1 and n_test + n_train <= {len(images)} images, "
                         f"got n_test={n_test}, n_train={n_train}")
    perm = np.random.default_rng(seed).permutation(len(images))
    return images[perm[n_test:n_test + n_train]], images[perm[:n_test]]


def attacker_knowledge(train_images: np.ndarray, pair_index: int = 0) -> AttackerKnowledge:
    """Estimate the attacker's priors from training images only (never from the targets)."""
    train = validate_images(train_images, "train_images", batch=True)
    if len(train) == 0:
        raise ValueError("attacker_knowledge needs at least one training image")
    hist = np.bincount(train.ravel(), minlength=256).astype(np.float64)
    return AttackerKnowledge(
        reference_histogram=hist / hist.sum(),
        darkest_level=int(np.median(train.reshape(len(train), -1).min(axis=1))),
        pair_plain=train[pair_index].copy(),
        mean_image=np.round(train.mean(axis=0)).astype(np.uint8),
        n_training_images=len(train),
    )


# --------------------------------------------------------------------------- generic attacks


def ciphertext_only_attack(test_ciphers: np.ndarray, knowledge: AttackerKnowledge) -> AttackResult:
    """:func:`attack_substitution_ciphertext_only` on the whole stack of test ciphertexts (the server
    holds all of them, under one key) with the training images' histogram as reference."""
    return attack_substitution_ciphertext_only(test_ciphers, knowledge.reference_histogram)


def _pin_darkest(attack: Callable[[int, int], AttackResult], darkest_level: int,
                 oracle_value: int | None = None) -> AttackResult:
    """Run a "differences are public" attack (fixed_r, LWE fixed) with one pinned pixel.

    ``attack(index, value)`` runs the attack assuming ``value`` at flat pixel ``index``.
    With ``oracle_value`` that is the true value of pixel 0.  Otherwise the attacker pins the
    image's darkest pixel at ``darkest_level``, found in two passes: pinning pixel 0 at 255 makes
    every pixel at most as bright as pixel 0 decode consistently (to 255 - (m_0 - m_i)) and every
    brighter one decode inconsistently (clipped to 255), so the darkest pixel is the argmin.
    """
    if oracle_value is not None:
        return attack(0, oracle_value)
    first = attack(0, 255)
    if first.coverage == 0:
        first.notes = "no pixel consistent with reused randomness: " + first.notes
        return first
    second = attack(int(np.argmin(first.image.ravel())), darkest_level)
    second.seconds += first.seconds
    return second


# --------------------------------------------------------------------------- per scheme


def _run_per_image(images: Iterable[np.ndarray], fn: Callable[[np.ndarray], AttackResult]) -> list[AttackResult]:
    out = []
    for img in images:
        t0 = time.perf_counter()
        try:
            res = fn(img)
        except (ValueError, ArithmeticError) as exc:  # the attack refuses input of another regime
            shape = np.shape(img)
            res = AttackResult(image=np.zeros(shape, dtype=np.uint8), success=False, coverage=0.0,
                               seconds=time.perf_counter() - t0, notes=f"refused: {exc}")
        out.append(res)
    return out


def _run_from_results(scheme: str, regime: Regime, input_: str, attack: str, uses: str,
                      results: list[AttackResult], notes: str = "") -> AttackRun:
    refused = [r for r in results if r.notes.startswith("refused")]
    if refused and not notes:
        notes = f"{len(refused)}/{len(results)} refused: {refused[0].notes.removeprefix('refused: ')[:90]}"
    elif not notes and results:
        notes = results[0].notes[:120]
    return AttackRun(scheme, regime, input_, attack, uses,
                     images=np.stack([r.image for r in results]),
                     success=[bool(r.success) for r in results],
                     coverage=[float(r.coverage) for r in results],
                     seconds=float(sum(r.seconds for r in results)), notes=notes)


def _generic_runs(scheme: str, regime: Regime, input_: str, pair_cipher: np.ndarray, test_ciphers: np.ndarray,
                  knowledge: AttackerKnowledge, originals: np.ndarray, refine: bool = True) -> list[AttackRun]:
    """Known-pair and ciphertext-only substitution attacks on one kind of input."""
    results, lookups, diag = known_pair_attack(pair_cipher, knowledge.pair_plain, list(test_ciphers), refine)
    lookup_ssim = float(np.median([ssim(o, x) for o, x in zip(originals, lookups)]))  # evaluator's score
    pair = _run_from_results(
        scheme, regime, input_, "known pair" + (" + smoothness" if refine else ""), USES["known_pair"], results,
        notes=(f"table of {int(diag['table_entries'])} symbols reproduces {diag['pair_consistency']:.0%} of its pair; "
               f"look-up alone: median SSIM {lookup_ssim:.2f}"
               + ("; collisions/unseen symbols resolved from neighbours" if refine else "")))
    pair.extra.update(diag, ssim_lookup_only_median=lookup_ssim)
    t0 = time.perf_counter()
    co = ciphertext_only_attack(np.asarray(test_ciphers), knowledge)
    seconds = time.perf_counter() - t0
    n = len(test_ciphers)
    z = co.metrics.get("neighbour_equality_z", float("nan"))
    co_run = AttackRun(scheme, regime, input_, "ciphertext only", USES["ciphertext_only"], images=co.image,
                       success=[bool(co.success)] * n, coverage=[co.coverage] * n, seconds=seconds,
                       alternative=co.alternative,
                       notes=(f"{int(co.metrics.get('distinct_symbols', 0))} distinct symbols, neighbour-equality "
                              f"z = {z:.1f}" + ("" if co.success else " (not a substitution: nothing recovered)")))
    return [pair, co_run]


def paillier_attacks(private: PaillierPrivateKey, regime: "Regime | str", test_images: np.ndarray,
                     knowledge: AttackerKnowledge, renderer: str = "mod256", known_pixel: str = "darkest",
                     refine: bool = True) -> list[AttackRun]:
    """Every attack on Paillier ciphertexts of ``test_images`` under ``regime``.

    The client (``private`` key holder) encrypts the test images and the known-pair training
    image with one :class:`ImageEncryptor`; the attacks see only ciphertexts, renderings and the
    public n.  Full ciphertexts: r_one algebra, fixed_r algebra + one pixel, known pair,
    ciphertext only.  ``renderer`` images (what the CNN is fed): r_one algebra mod 256, known pair,
    ciphertext only.
    """
    regime = Regime.parse(regime)
    if known_pixel not in ("darkest", "oracle"):
        raise ValueError(f"known_pixel must be 'darkest' or 'oracle', got {known_pixel!r}")
    test = validate_images(test_images, "test_images", batch=True)
    enc = ImageEncryptor(private, regime)
    n = private.public.n
    full = [enc.encrypt(img).values for img in test]
    pair_full = enc.encrypt(knowledge.pair_plain).values
    full_stack = np.empty((len(full),) + test.shape[1:], dtype=object)
    for i, c in enumerate(full):
        full_stack[i] = c
    if enc.table is not None:
        rendered = enc.encrypt_rendered(test, renderer, progress=False)
        pair_rendered = enc.encrypt_rendered(knowledge.pair_plain[None], renderer, progress=False)[0]
    else:  # randomized: render the very ciphertexts attacked above
        rendered = np.stack([render(c, private.public, renderer) for c in full])
        pair_rendered = render(pair_full, private.public, renderer)

    runs = [_run_from_results("Paillier", regime, "full ciphertexts", "r_one algebra", USES["public_key"],
                              _run_per_image(full, lambda c: attack_r_one(c, n)))]
    uses = USES["one_pixel_oracle" if known_pixel == "oracle" else "one_pixel"]
    fixed = []
    for img, c in zip(test, full):
        oracle = int(img.ravel()[0]) if known_pixel == "oracle" else None
        fixed += _run_per_image([c], lambda c_, o=oracle: _pin_darkest(
            lambda i, v: attack_fixed_r(c_, n, i, v), knowledge.darkest_level, o))
    runs.append(_run_from_results("Paillier", regime, "full ciphertexts", "fixed_r algebra + 1 pixel", uses, fixed))
    runs += _generic_runs("Paillier", regime, "full ciphertexts", pair_full, full_stack, knowledge, test, refine)
    rin = "c mod 256" if renderer == "mod256" else f"rendered ({renderer})"
    if renderer == "mod256":
        runs.append(_run_from_results("Paillier", regime, rin, "r_one algebra mod 256", USES["public_key"],
                                      _run_per_image(rendered, lambda x: attack_r_one_rendered(x, n))))
    runs += _generic_runs("Paillier", regime, rin, pair_rendered, rendered, knowledge, test, refine)
    return [r.score(test, knowledge.mean_image) for r in runs]


def rsa_attacks(rsa_key: "_rsa.RSAPrivateKey | _rsa.RSAPublicKey", test_images: np.ndarray,
                knowledge: AttackerKnowledge, refine: bool = True) -> list[AttackRun]:
    """Textbook RSA (deterministic by nature; no randomized variant is homomorphic): dictionary of
    E(0..255) under the public key, known pair, ciphertext only."""
    pub = rsa_key.public if isinstance(rsa_key, _rsa.RSAPrivateKey) else rsa_key
    test = validate_images(test_images, "test_images", batch=True)
    full = [_rsa.encrypt(pub, img) for img in test]
    stack = np.empty((len(full),) + test.shape[1:], dtype=object)
    for i, c in enumerate(full):
        stack[i] = c
    runs = [_run_from_results("textbook RSA", Regime.FIXED_R, "full ciphertexts", "dictionary E(0..255)",
                              USES["public_key"],
                              _run_per_image(full, lambda c: attack_rsa_dictionary(c, pub.e, pub.n)))]
    runs += _generic_runs("textbook RSA", Regime.FIXED_R, "full ciphertexts", _rsa.encrypt(pub, knowledge.pair_plain),
                          stack, knowledge, test, refine)
    return [r.score(test, knowledge.mean_image) for r in runs]


def lwe_attacks(lwe_key: _lwe.LWESecretKey, regime: "Regime | str", test_images: np.ndarray,
                knowledge: AttackerKnowledge, known_pixel: str = "darkest", refine: bool = True) -> list[AttackRun]:
    """LWE (Regev) ciphertexts (a, b) of ``test_images``: the reused-(a, e) attack + one pixel on the
    b values, known pair and ciphertext only on the b values (a is public and, when reused, equal
    everywhere).  Images are encrypted one at a time to bound memory ((n+1) int64 per pixel)."""
    regime = Regime.parse(regime)
    test = validate_images(test_images, "test_images", batch=True)
    p = lwe_key.params
    bs = [np.asarray(_lwe.encrypt(lwe_key, img.astype(np.int64), regime).b).copy() for img in test]
    pair_b = np.asarray(_lwe.encrypt(lwe_key, knowledge.pair_plain.astype(np.int64), regime).b).copy()
    uses = USES["one_pixel_oracle" if known_pixel == "oracle" else "one_pixel"]
    fixed = []
    for img, b in zip(test, bs):
        oracle = int(img.ravel()[0]) if known_pixel == "oracle" else None
        fixed += _run_per_image([b], lambda b_, o=oracle: _pin_darkest(
            lambda i, v: attack_lwe_fixed(b_, p.q, p.t, i, v), knowledge.darkest_level, o))
    runs = [_run_from_results(f"LWE ({p.name})", regime, "b values", "reused (a, e) + 1 pixel", uses, fixed)]
    runs += _generic_runs(f"LWE ({p.name})", regime, "b values", pair_b, np.stack(bs), knowledge, test, refine)
    return [r.score(test, knowledge.mean_image) for r in runs]


def prior_run(test_images: np.ndarray, knowledge: AttackerKnowledge) -> AttackRun:
    """The baseline every attack must beat: no ciphertext at all, just the mean training image."""
    test = validate_images(test_images, "test_images", batch=True)
    images = np.repeat(knowledge.mean_image[None], len(test), axis=0)
    run = AttackRun("none (prior only)", None, "no ciphertext", "mean training image", "training images only",
                    images=images, success=[False] * len(test), coverage=[0.0] * len(test), seconds=0.0,
                    notes="what anyone knows about X-rays without seeing a ciphertext")
    return run.score(test, knowledge.mean_image)


def run_attack_suite(test_images: np.ndarray, knowledge: AttackerKnowledge, paillier_key: PaillierPrivateKey,
                     rsa_key: "_rsa.RSAPrivateKey | None" = None, lwe_key: "_lwe.LWESecretKey | None" = None,
                     regimes: Sequence["Regime | str"] = tuple(Regime), renderer: str = "mod256",
                     known_pixel: str = "darkest") -> list[AttackRun]:
    """Every attack on every Paillier regime (randomized included), textbook RSA, and LWE with
    fixed and fresh randomness; the first row is the prior-only baseline (:func:`prior_run`)."""
    runs: list[AttackRun] = [prior_run(test_images, knowledge)]
    for regime in regimes:
        runs += paillier_attacks(paillier_key, regime, test_images, knowledge, renderer, known_pixel)
    if rsa_key is not None:
        runs += rsa_attacks(rsa_key, test_images, knowledge)
    if lwe_key is not None:
        for regime in (Regime.FIXED_R, Regime.RANDOMIZED):
            runs += lwe_attacks(lwe_key, regime, test_images, knowledge, known_pixel)
    return runs


# --------------------------------------------------------------------------- tables


BRIEF_COLUMNS = ["scheme", "regime", "input", "attack", "success_rate", "exact_rate", "beats_prior_rate",
                 "psnr_median", "ssim_median", "coverage_mean", "s_per_image"]


def results_table(runs: Sequence[AttackRun], brief: bool = False) -> pd.DataFrame:
    """One row per (scheme, regime, input, attack): success rate (the attack's own verdict, from
    public data), exact and beats-the-prior rates (SSIM above the mean training image's + 0.1),
    mean/median PSNR and SSIM, coverage, seconds per image, what the attacker used, notes.
    ``psnr_mean`` is inf when every image is exact, else exact images count as 100 dB.
    ``brief``: the main columns only, rounded for display."""
    df = pd.DataFrame([r.summary() for r in runs])
    return df[BRIEF_COLUMNS].round(3) if brief else df


def ssim_matrix(runs: Sequence[AttackRun]) -> pd.DataFrame:
    """Median SSIM as a (scheme, regime, input) x attack matrix: one glance at what breaks what."""
    df = results_table(runs)
    return df.pivot_table(index=["scheme", "regime", "input"], columns="attack", values="ssim_median",
                          aggfunc="first", sort=False)


_LEAK_ROWS = (
    ("plain", "Paillier", None, "everything (no encryption)"),
    ("r_one", "Paillier", Regime.R_ONE, LEAKS[Regime.R_ONE]),
    ("fixed_r", "Paillier", Regime.FIXED_R, LEAKS[Regime.FIXED_R]),
    ("table", "Paillier", Regime.TABLE, LEAKS[Regime.TABLE]),
    ("randomized", "Paillier", Regime.RANDOMIZED, LEAKS[Regime.RANDOMIZED]),
    ("rsa/fixed_r", "textbook RSA", Regime.FIXED_R, "the whole image: E(0..255) is computable from the public key"),
    ("lwe/fixed_r", "LWE", Regime.FIXED_R, "every pixel difference; one known pixel reveals the image"),
    ("lwe/randomized", "LWE", Regime.RANDOMIZED, "nothing beyond the array shape (under the LWE assumption)"),
)


def _strongest(runs: Sequence[AttackRun]) -> AttackRun | None:
    """The run with the highest median SSIM (ties: the higher success rate)."""
    if not runs:
        return None
    return max(runs, key=lambda r: (float(np.median(r.ssim)) if r.ssim else -1.0, float(np.mean(r.success))))


def _median_ssim(run: AttackRun | None) -> float:
    return round(float(np.median(run.ssim)), 3) if run is not None and run.ssim else float("nan")


def leakage_vs_accuracy_table(runs: Sequence[AttackRun], cnn_accuracies: dict[str, float] | None = None,
                              cnn_run: str | None = None) -> pd.DataFrame:
    """Per regime: what it leaks; the strongest attack found (highest median SSIM) on any input and
    on the rendered images a CNN is fed, with what the attacker needs; whether it is invertible (the
    strongest attack beats the prior on most test images); and the CNN test accuracy from notebook
    03 -- ``"not run"`` when none is given: nothing is invented.

    ``cnn_accuracies``: ``{regime: test accuracy}`` of notebook 03's run records
    (:func:`ppdl_utils.records.accuracies_by_regime`); ``cnn_run`` the run they come from (shown in
    the ``cnn_run`` column)."""
    cnn = cnn_accuracies or {}
    rows = []
    for key, scheme, regime, leaks in _LEAK_ROWS:
        mine = [r for r in runs if regime is not None and r.regime is regime and r.scheme.startswith(scheme)]
        if regime is not None and not mine and key not in cnn:
            continue
        best = _strongest(mine)
        best_rendered = _strongest([r for r in mine if r.input.startswith(("c mod", "rendered"))])
        inverted = best is not None and bool(best.beats_prior) and float(np.mean(best.beats_prior)) >= 0.5
        rows.append({
            "scheme": scheme,
            "regime": regime.label if regime is not None else "plain (no encryption)",
            "leaks": leaks,
            "strongest_attack": f"{best.input} · {best.attack}" if best else "-",
            "attacker_needs": best.uses if best else "-",
            "attack_ssim_median": _median_ssim(best),
            "attack_exact_rate": float(np.mean(np.isinf(best.psnr))) if best and best.psnr else float("nan"),
            "strongest_attack_on_cnn_input": (f"{best_rendered.input} · {best_rendered.attack}"
                                              if best_rendered else "-"),
            "cnn_input_attack_ssim_median": _median_ssim(best_rendered),
            "invertible": ("yes" if inverted else "no") if best else "-",
            "cnn_test_accuracy": f"{cnn[key]:.3f}" if key in cnn else "not run",
            "cnn_run": (cnn_run or "-") if key in cnn else "-",
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- figure


def recovered_grid(runs: Sequence[AttackRun], originals: np.ndarray, n_columns: int = 4, source: str = "",
                   cell: float = 1.55):
    """Rows: the originals, then each run's reconstructions, each captioned with its PSNR / SSIM.

    Row labels carry the regime label (deterministic regimes say "NOT secure")."""
    import matplotlib.pyplot as plt

    n_cols = min(n_columns, len(originals))
    n_rows = len(runs) + 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + 2.2, cell * n_rows * 1.08), squeeze=False)
    for c in range(n_cols):
        for r in range(n_rows):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.imshow(originals[c], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set_title(f"test image {c}", fontsize=7)
                continue
            run = runs[r - 1]
            ax.imshow(run.images[c], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            p = run.psnr[c] if run.psnr else float("nan")
            s = run.ssim[c] if run.ssim else float("nan")
            ax.set_xlabel(f"PSNR {'inf' if math.isinf(p) else f'{p:.1f}'} · SSIM {s:.2f}", fontsize=6.5, labelpad=2)
    axes[0][0].set_ylabel("original", fontsize=7)
    for r, run in enumerate(runs, start=1):
        axes[r][0].set_ylabel(f"{run.scheme}\n{run.regime_label}\n{run.input}\n{run.attack}", fontsize=6,
                              rotation=0, ha="right", va="center", labelpad=4)
    height = fig.get_size_inches()[1]
    fig.tight_layout(h_pad=0.3, w_pad=0.2, rect=(0, 0.22 / height, 1, 1))  # room for the source stamp
    if source:
        fig.text(0.995, 0.001, source, ha="right", va="bottom", fontsize=6, color="0.35")
    return fig


#: The rows of the notebook's summary figure: (scheme prefix, regime, input, attack prefix).
FIGURE_RUNS = (
    ("none", "-", "no ciphertext", "mean training image"),
    ("Paillier", "r_one", "full ciphertexts", "r_one algebra"),
    ("Paillier", "fixed_r", "full ciphertexts", "fixed_r algebra"),
    ("Paillier", "table", "full ciphertexts", "known pair"),
    ("Paillier", "table", "full ciphertexts", "ciphertext only"),
    ("Paillier", "fixed_r", "c mod 256", "known pair"),
    ("Paillier", "table", "c mod 256", "known pair"),
    ("Paillier", "table", "c mod 256", "ciphertext only"),
    ("textbook RSA", "fixed_r", "full ciphertexts", "dictionary"),
    ("LWE", "fixed_r", "b values", "reused"),
    ("Paillier", "randomized", "full ciphertexts", "fixed_r algebra"),
    ("Paillier", "randomized", "c mod 256", "known pair"),
    ("Paillier", "randomized", "c mod 256", "ciphertext only"),
    ("LWE", "randomized", "b values", "reused"),
)


def select_runs(runs: Sequence[AttackRun],
                wanted: Sequence[tuple[str, str, str, str]] = FIGURE_RUNS) -> list[AttackRun]:
    """Pick runs by (scheme prefix, regime value or "-", input, attack prefix), in the order given;
    combinations that were not run are skipped."""
    out = []
    for scheme, regime, input_, attack in wanted:
        for r in runs:
            value = r.regime.value if r.regime is not None else "-"
            if (r.scheme.startswith(scheme) and value == regime and r.input == input_
                    and r.attack.startswith(attack)):
                out.append(r)
                break
    return out
