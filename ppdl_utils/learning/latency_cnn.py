"""Rung 4 for one image at a time: the square CNN on CKKS-encrypted pixels in a replicated slot layout.

The batched mode (:mod:`batched_rungs`) is cheap per image but costs the same whether a batch holds one
image or 4,096; the im2col mode (:mod:`encrypted_cnn`) serves one image but its ``.mm`` costs one
rotation per input.  Here one image fills the N/2 slots of a few ciphertexts and the server needs
``log2`` rotations per sum instead.

Layout (``n = N/2`` slots, ``H`` = hidden units rounded up to a power of two, ``m = n / H``, ``C`` classes):

* *hidden blocks*: slots ``[m k, m k + m)`` belong to hidden unit k (k < H);
* *conv blocks*: pairs of hidden blocks, ``2m`` slots, ``n / 2m`` of them.  Conv output j (filter-major,
  ``f * windows + w``, as the twin's flatten) sits at position ``pos[j]`` of every conv block: half
  ``e = 0`` or ``1`` of the block, offset ``C - 1 .. m - 1`` in it (offsets below ``C - 1`` stay empty, see
  step 2).  A spec with more conv outputs than ``2 (m - C + 1)`` raises :class:`SlotLayoutError`.

Client: kernel position p (``kernel^2`` of them) belongs to upload ``p // R`` and conv block ``p % R``
(``R = n / 2m`` replicas); upload t holds at ``block * 2m + pos[f * windows + w]`` the pixel of window w
at position p, scaled to [0, 1], for every filter f.  Two uploads for the default CNN (64 positions, 32
blocks), encrypted with the secret key and sent seeded.  Why not one upload per kernel position (no conv
rotation at all): an upload costs the client about 6 ms of CPU and 230 KB, a rotation the server 4-7 ms, so
2 uploads and 5 rotations beat 64 uploads in time and bytes.

Server (five rescales, every rotation before its rescale):

1. conv: ``sum_t upload_t (.) K_t`` (``K_t`` holds ``kernels[f][p]`` where the upload holds position p),
   then rotate-and-sum across conv blocks (steps 2m, 4m, ..., n/2): every conv block then holds every
   conv output, summed over the kernel positions.  + conv bias; square.
2. dense (filters x windows) -> hidden: hidden block k must see all conv outputs, but holds only m slots
   of one half.  ``P = h (.) Wa + rot(h (.) Wb, m)``: ``Wa`` holds ``w1[j, k]`` for the conv outputs j of
   block k's own half, ``Wb`` those of the other half, which the rotation by m brings in.  A
   rotate-and-sum inside hidden blocks (steps 1, 2, ..., m/2) leaves hidden k's sum at offsets
   ``0 .. C-1`` of its block (the empty offsets keep the neighbouring block out).  + b1; square.
3. dense hidden -> C: ``(.) W2`` with ``w2[k, c]`` at offset c of hidden block k (zero elsewhere: it
   also masks what the rotations left in the other slots), rotate-and-sum across hidden blocks (steps
   m, 2m, ..., n/2): slot c holds class c's score.  + b2.  One result ciphertext for all classes.

The default CNN (3 filters x 36 windows = 108 conv outputs, 64 hidden) gives m = 64: 5 + 1 + 6 + 6 = 18
rotations with 12 distinct steps (1, 2, ..., 2048) and 2 + 2 + 1 plaintext products per image.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ppdl_utils.crypto.ckks_packed import PackingError
from ppdl_utils.crypto.ckks_slots import SLOTS_CNN_8192, SlotKeyHolder, SlotMessage, SlotParams, SlotServer
from ppdl_utils.errors import WrongKeyError
from ppdl_utils.learning.batched_rungs import BatchCost
from ppdl_utils.learning.encrypted_cnn import CNNSpec, SquareCNN, check_images, plain_cnn_scores
from ppdl_utils.learning.encrypted_common import InputShapeError, OutputRangeError

__all__ = ["SlotLayoutError", "SlotLayout", "latency_layout", "latency_parties", "pixel_vectors",
           "client_encrypt_image", "PreparedCNN", "prepare_cnn", "server_latency_cnn", "decrypt_scores",
           "single_image_scores"]


class SlotLayoutError(PackingError):
    """A CNN does not fit the replicated slot layout; the message names the constraint it breaks."""


def _next_pow2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def _log2_steps(first: int, stop: int) -> list[int]:
    """first, 2 first, 4 first, ... below ``stop``."""
    out, step = [], first
    while step < stop:
        out.append(step)
        step *= 2
    return out


@dataclass(frozen=True)
class SlotLayout:
    """Where every pixel, conv output and hidden unit of one image sits (see the module docstring)."""

    spec: CNNSpec
    n_slots: int

    def __post_init__(self) -> None:
        spec, n = self.spec, self.n_slots
        if not isinstance(spec, CNNSpec):
            raise SlotLayoutError(f"spec must be a CNNSpec, got {type(spec).__name__}")
        if self.hidden_blocks > n // 2:
            raise SlotLayoutError(f"hidden={spec.hidden}: one hidden block per unit needs at least 2 slots each; "
                                  f"{n} slots hold at most {n // 2} units")
        if spec.n_classes > self.block:
            raise SlotLayoutError(f"n_classes={spec.n_classes}: the scores sit at offsets 0..C-1 of a hidden block "
                                  f"of {self.block} slots")
        if self.n_conv > 2 * self.usable:
            raise SlotLayoutError(
                f"filters x windows = {spec.n_filters} x {spec.windows} = {self.n_conv} conv outputs; a conv block "
                f"of {2 * self.block} slots holds at most {2 * self.usable} (2 halves x ({self.block} - "
                f"{spec.n_classes - 1}) offsets) with hidden={spec.hidden} -> {self.hidden_blocks} hidden blocks of "
                f"{n} / {self.hidden_blocks} = {self.block} slots: fewer filters, larger stride or fewer hidden units")

    # ---------------------------------------------------------------- geometry
    @property
    def hidden_blocks(self) -> int:
        """H: hidden units rounded up to a power of two (at least 2: a conv block is two hidden blocks)."""
        return max(2, _next_pow2(self.spec.hidden))

    @property
    def block(self) -> int:
        """m: slots per hidden block."""
        return self.n_slots // self.hidden_blocks

    @property
    def replicas(self) -> int:
        """R: conv blocks (2m slots each) per ciphertext."""
        return self.n_slots // (2 * self.block)

    @property
    def usable(self) -> int:
        """Offsets of a half block that hold conv outputs (the first C - 1 stay empty)."""
        return self.block - (self.spec.n_classes - 1)

    @property
    def n_conv(self) -> int:
        return self.spec.n_filters * self.spec.windows

    @property
    def n_positions(self) -> int:
        return self.spec.kernel * self.spec.kernel

    @property
    def n_uploads(self) -> int:
        """Ciphertexts the client sends: kernel positions / replicas, rounded up."""
        return -(-self.n_positions // self.replicas)

    @property
    def positions(self) -> np.ndarray:
        """pos[j]: offset of conv output j inside a conv block (half 0 first, then half 1)."""
        j = np.arange(self.n_conv)
        half, offset = np.divmod(j, self.usable)
        return half * self.block + (self.spec.n_classes - 1) + offset

    # ---------------------------------------------------------------- rotations
    @property
    def conv_steps(self) -> list[int]:
        return _log2_steps(2 * self.block, self.n_slots)

    @property
    def inner_steps(self) -> list[int]:
        return _log2_steps(1, self.block)

    @property
    def outer_steps(self) -> list[int]:
        return _log2_steps(self.block, self.n_slots)

    @property
    def rotation_steps(self) -> list[int]:
        """Distinct rotation keys the server needs."""
        return sorted(set(self.conv_steps) | {self.block} | set(self.inner_steps) | set(self.outer_steps))

    @property
    def rotations_per_image(self) -> int:
        return len(self.conv_steps) + 1 + len(self.inner_steps) + len(self.outer_steps)

    def describe(self) -> str:
        return (f"replicated slots: {self.n_uploads} uploads, conv blocks of {2 * self.block} slots x "
                f"{self.replicas}, {self.hidden_blocks} hidden blocks of {self.block}, "
                f"{self.rotations_per_image} rotations ({len(self.rotation_steps)} keys)")


def latency_layout(spec: CNNSpec, params: SlotParams = SLOTS_CNN_8192) -> SlotLayout:
    """The layout of ``spec`` under ``params``; SlotLayoutError if it does not fit."""
    return SlotLayout(spec, params.n_slots)


def latency_parties(spec: CNNSpec, params: SlotParams = SLOTS_CNN_8192) -> tuple[SlotKeyHolder, SlotServer]:
    """A fresh key holder with the rotation keys ``spec``'s layout needs, and the server given its keys."""
    layout = latency_layout(spec, params)
    key_holder = SlotKeyHolder(params, layout.rotation_steps)
    return key_holder, SlotServer(params, key_holder.evaluation_keys(), key_holder.fingerprint)


def _window_pixels(pixels: np.ndarray, spec: CNNSpec) -> np.ndarray:
    """(windows, kernel^2): window w's pixel at kernel position p, row-major windows as the twin."""
    k, s, side = spec.kernel, spec.stride, spec.side
    return np.stack([pixels[i * s:i * s + k, j * s:j * s + k].ravel() for i in range(side) for j in range(side)])


def _spread(layout: SlotLayout, per_position: np.ndarray) -> np.ndarray:
    """(uploads, n_slots) from ``per_position`` (kernel^2 x conv outputs): position p's row goes to
    upload p // R, conv block p % R."""
    out = np.zeros((layout.n_uploads * layout.replicas, 2 * layout.block))
    out[:layout.n_positions, layout.positions] = per_position
    return out.reshape(layout.n_uploads, layout.n_slots)


def _one_image(image: np.ndarray, spec: CNNSpec, parameter: str = "image") -> np.ndarray:
    x = np.asarray(image)
    size = spec.image_size
    if x.shape not in ((size, size), (1, size, size)):
        raise InputShapeError(f"{parameter} has shape {x.shape}; the network takes one {size}x{size} grayscale "
                              f"image (downsample to {size} px first)")
    return check_images(x, spec, parameter=parameter)[0]


def pixel_vectors(layout: SlotLayout, image: np.ndarray) -> np.ndarray:
    """The client's plaintext slots (uploads x n_slots) for one uint8 / [0, 1] image."""
    pixels = _one_image(image, layout.spec)
    windows = _window_pixels(pixels, layout.spec)  # (W, k^2)
    return _spread(layout, np.tile(windows.T, (1, layout.spec.n_filters)))  # same pixel for every filter


def client_encrypt_image(key_holder: SlotKeyHolder, image: np.ndarray, layout: SlotLayout) -> SlotMessage:
    """Client: lay out, encrypt (symmetric, seeded) and serialize one image."""
    return key_holder.encrypt(pixel_vectors(layout, image), tag=f"image{layout.spec.image_size}")


@dataclass
class PreparedCNN:
    """The server's plaintexts for one model, encoded once at the depth and scale each is used at."""

    layout: SlotLayout
    conv: list            # one per upload (None where its kernel weights are all zero)
    conv_bias: object
    wa: object
    wb: object
    b1: object
    w2: object
    b2: object


def _check_model(cnn: SquareCNN, layout: SlotLayout) -> None:
    if not isinstance(cnn, SquareCNN):
        raise InputShapeError(f"cnn must be a SquareCNN (cnn_from_keras), got {type(cnn).__name__}")
    spec = cnn.spec
    shapes = {"kernels": (cnn.kernels, (spec.n_filters, spec.kernel, spec.kernel)),
              "conv_bias": (cnn.conv_bias, (spec.n_filters,)), "w1": (cnn.w1, (layout.n_conv, spec.hidden)),
              "b1": (cnn.b1, (spec.hidden,)), "w2": (cnn.w2, (spec.hidden, spec.n_classes)),
              "b2": (cnn.b2, (spec.n_classes,))}
    for name, (value, shape) in shapes.items():
        value = np.asarray(value)
        if value.shape != shape:
            raise InputShapeError(f"cnn.{name} has shape {value.shape}; its spec needs {shape}")
        if not np.isfinite(value).all():
            raise InputShapeError(f"cnn.{name} holds NaN or infinite values")


def prepare_cnn(server: SlotServer, cnn: SquareCNN) -> PreparedCNN:
    """Encode ``cnn``'s weights in the layout (once per model); refuses a model that does not fit the
    layout or whose rotations the server holds no key for, before any encrypted work."""
    layout = latency_layout(cnn.spec, server.params)
    _check_model(cnn, layout)
    if server.params.levels < 5:
        raise SlotLayoutError(f"{server.params.name} allows {server.params.levels} rescales; the CNN needs 5")
    server.require_rotations(layout.rotation_steps)
    spec, m, H = cnn.spec, layout.block, layout.hidden_blocks
    scales = server.scales("pspsp")
    # conv: K_t holds kernels[f][p] where upload t holds kernel position p
    kernel_rows = np.repeat(cnn.kernels.reshape(spec.n_filters, -1).T, spec.windows, axis=1)  # (k^2, F*W)
    conv = [server.weights(v, 0) for v in _spread(layout, kernel_rows)]
    block = np.zeros(2 * m)
    block[layout.positions] = np.repeat(cnn.conv_bias, spec.windows)
    conv_bias = server.encode(np.tile(block, layout.replicas), 1, scales[1])
    # dense 1: which conv output sits at each offset of each half of a conv block (-1: none)
    at = -np.ones(2 * m, dtype=int)
    at[layout.positions] = np.arange(layout.n_conv)
    w1 = np.zeros((layout.n_conv + 1, H))  # the extra row (index -1) is the zero weight of an empty offset
    w1[:-1, :spec.hidden] = cnn.w1
    k = np.repeat(np.arange(H), m)             # hidden block of every slot
    offset = np.tile(np.arange(m), H)
    half = k % 2                               # which half of its conv block hidden block k is
    wa = w1[at[half * m + offset], k]
    target = w1[at[(1 - half) * m + offset], k]  # what hidden block k needs from the other half
    wb = np.roll(target, m)                    # rot(h (.) wb, m) = rot(h, m) (.) target
    b1 = np.zeros((H, m))
    b1[:spec.hidden, :spec.n_classes] = cnn.b1[:, None]
    w2 = np.zeros((H, m))
    w2[:spec.hidden, :spec.n_classes] = cnn.w2
    return PreparedCNN(layout, conv, conv_bias, server.weights(wa, 2), server.weights(wb, 2),
                       server.encode(b1.ravel(), 3, scales[3]), server.weights(w2.ravel(), 4),
                       server.encode(np.asarray(cnn.b2, np.float64), 5, scales[5]))


def server_latency_cnn(server: SlotServer, model: "PreparedCNN | SquareCNN", upload: SlotMessage) -> SlotMessage:
    """Server: conv -> square -> dense -> square -> dense on one encrypted image; returns one ciphertext
    whose slots 0..C-1 hold the scores.  A SquareCNN is prepared first (better: prepare it once)."""
    prepared = model if isinstance(model, PreparedCNN) else prepare_cnn(server, model)
    layout = prepared.layout
    uploads = server.receive(upload, layout.n_uploads)  # WrongKeyError / count before any work
    h = server.dot(list(zip(uploads, prepared.conv)))
    server.rescale(server.rotate_sum(h, layout.conv_steps))
    h = server.square(server.add_plain(h, prepared.conv_bias))
    z = server.dot([(h, prepared.wa)])
    if prepared.wb is not None:
        server.add(z, server.rotate(server.dot([(h, prepared.wb)]), layout.block))
    server.rescale(server.rotate_sum(z, layout.inner_steps))
    z = server.square(server.add_plain(z, prepared.b1))
    scores = server.rotate_sum(server.dot([(z, prepared.w2)]), layout.outer_steps)
    server.add_plain(server.rescale(scores), prepared.b2)
    return server.send([scores], tag="scores")


def decrypt_scores(key_holder: SlotKeyHolder, result: SlotMessage, n_classes: int) -> np.ndarray:
    """Client: the C scores of one image (refuses a result under another key)."""
    return key_holder.decrypt(result, n_classes)[0]


def single_image_scores(key_holder: SlotKeyHolder, server: SlotServer, cnn: SquareCNN, images: np.ndarray
                        ) -> tuple[np.ndarray, list[BatchCost]]:
    """Encrypted scores of every image, one image per round trip, with each round trip's cost.

    Checked before any encryption: image size and values, the model against the layout and the server's
    rotation keys, and the scores' range (the twin's largest |score| must stay below half the bound the
    last prime leaves).
    """
    if key_holder.fingerprint != server.fingerprint:
        raise WrongKeyError(f"the server holds the keys of {server.fingerprint}, not of {key_holder.fingerprint}")
    x = np.asarray(images)
    x = x[None] if x.ndim == 2 else x
    for i, image in enumerate(x):
        _one_image(image, cnn.spec, f"images[{i}]")
    if len(x) == 0:
        raise InputShapeError("images is empty: nothing to classify")
    prepared = prepare_cnn(server, cnn)
    bound = server.params.output_bound
    worst = float(np.abs(plain_cnn_scores(cnn, x)).max())
    if worst > bound / 2:
        raise OutputRangeError(f"largest |score| of the plaintext twin is {worst:.3g}; {server.params.name} holds "
                               f"|score| < {bound:g} after its last rescale: divide the last layer "
                               "(cnn_from_keras(..., calibration=...)) first")
    scores, costs = [], []
    for image in x:
        t0 = time.process_time()
        upload = client_encrypt_image(key_holder, image, prepared.layout)
        t1 = time.process_time()
        result = server_latency_cnn(server, prepared, upload)
        t2 = time.process_time()
        scores.append(decrypt_scores(key_holder, result, cnn.spec.n_classes))
        t3 = time.process_time()
        costs.append(BatchCost(1, t1 - t0, t2 - t1, t3 - t2, upload.nbytes, result.nbytes))
    return np.stack(scores), costs
