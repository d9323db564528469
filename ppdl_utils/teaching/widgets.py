"""ipywidgets for teaching: a Paillier playground and an image-encryption explorer.

Each widget class keeps its computed values in ``.state`` and recomputes in ``.update()``, so
the callbacks can be driven (and tested) from Python without a browser. The HTML they display
marks its rows with ``ppdl-<name>`` classes, so a browser test can read the values a student sees.
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np

from ppdl_utils.analysis.cipher_stats import r_one_rendering
from ppdl_utils.crypto.paillier import (
    PaillierPrivateKey,
    add_ciphertexts,
    decrypt_int,
    encrypt_int,
    generate_keypair,
    keypair_from_primes,
    security_label,
)
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.reporting.figures import stamp_source

KEEP_DIGITS = 12  # digits kept at each end of an abbreviated number
SHOW_SECRETS_UP_TO_BITS = 64  # λ and μ are shown for teaching-size keys only
R_ONE_WARNING = ("<div class='ppdl-r-one-warning' style='color:#b00'><b>r = 1 for every encryption</b>: "
                 "c = g<sup>m</sup> = 1 + n·m mod n², the weakest regime (<code>r_one</code>). Equal "
                 "messages give equal ciphertexts, and anyone holding the public n decrypts: "
                 "m = (c − 1) / n.</div>")


def abbreviate(value: int, full: bool = False, keep: int = KEEP_DIGITS) -> str:
    """``value`` as text; above 2·keep + 6 digits (unless `full`) only its first and last `keep`
    digits, with its digit count and bit length, so a 2048-bit key is not a wall of digits."""
    text = str(value)
    if full or len(text) <= 2 * keep + 6:
        return text
    return f"{text[:keep]}…{text[-keep:]} ({len(text.lstrip('-'))} digits, {abs(value).bit_length()} bits)"


def _show(widget: w.Widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


class PaillierPlayground:
    """Two messages, their ciphertexts, the product mod n^2 and its decryption (= the sum)."""

    def __init__(self, p: int = 17, q: int = 19, m1: int = 42, m2: int = 57) -> None:
        style = {"description_width": "initial"}
        self.mode = w.ToggleButtons(options=["small primes", "bit size"], value="small primes",
                                    description="key from", style=style)
        self.p = w.IntText(value=p, description="p")
        self.q = w.IntText(value=q, description="q")
        self.primes = w.HBox([self.p, self.q])
        self.bits = w.Dropdown(options=[32, 64, 128, 256, 512, 1024, 2048], value=64,
                               description="bits of n", style=style)
        self.m1 = w.IntText(value=m1, description="m1")
        self.m2 = w.IntText(value=m2, description="m2")
        # indent=False and an automatic width: the default 300 px cut the label short
        self.randomized = w.Checkbox(value=True, description="fresh random r for every encryption",
                                     indent=False, layout=w.Layout(width="auto"))
        self.warning = w.HTML(R_ONE_WARNING)
        self.full_digits = w.Checkbox(value=False, description="show every digit", indent=False,
                                      layout=w.Layout(width="auto"))
        self.output = w.HTML()
        self.state: dict[str, object] = {}
        self._key: PaillierPrivateKey | None = None
        self._key_source: tuple | None = None
        for control in (self.mode, self.p, self.q, self.bits, self.m1, self.m2, self.randomized,
                        self.full_digits):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([self.mode, self.primes, self.bits, w.HBox([self.m1, self.m2]),
                              self.randomized, self.warning, self.full_digits, self.output])
        self.update()

    def _current_key(self) -> PaillierPrivateKey:
        source = ((self.mode.value, self.p.value, self.q.value) if self.mode.value == "small primes"
                  else (self.mode.value, self.bits.value))
        if source != self._key_source:  # regenerate only when the key inputs change
            self._key = (keypair_from_primes(self.p.value, self.q.value)
                         if self.mode.value == "small primes"
                         else generate_keypair(self.bits.value, allow_insecure=True))  # teaching keys: labelled
            self._key_source = source
        assert self._key is not None
        return self._key

    def _sync_controls(self) -> None:
        """Show only the inputs of the current mode (stale p and q would mislead), and the r = 1
        warning whenever randomization is off."""
        small = self.mode.value == "small primes"
        _show(self.primes, small)
        _show(self.bits, not small)
        _show(self.warning, not self.randomized.value)

    def update(self) -> None:
        self._sync_controls()
        try:
            key = self._current_key()
            pub = key.public
            r = None if self.randomized.value else 1
            c1, c2 = encrypt_int(pub, self.m1.value, r), encrypt_int(pub, self.m2.value, r)
            c1_again = encrypt_int(pub, self.m1.value, r)
            product = add_ciphertexts(pub, c1, c2)
            self.state = {"n": pub.n, "n_square": pub.n_square, "c1": c1, "c2": c2,
                          "c1_again": c1_again, "product": product,
                          "decrypted_sum": decrypt_int(key, product),
                          "expected_sum": (self.m1.value + self.m2.value) % pub.n,
                          "r": "fresh random" if r is None else r, "error": None}
            self.state["abbreviated"] = abbreviate(pub.n_square) != str(pub.n_square)
            _show(self.full_digits, bool(self.state["abbreviated"]))
            self.output.value = self._html(key)
        except (ValueError, ArithmeticError) as exc:
            self.state = {"error": str(exc)}
            self.output.value = f"<b class='ppdl-error' style='color:#b00'>{html.escape(str(exc))}</b>"

    def _rows(self, key: PaillierPrivateKey) -> list[tuple[str, str, str]]:
        s, full = self.state, self.full_digits.value
        num = lambda value: abbreviate(value, full)  # noqa: E731 - a local shorthand
        secret = (f"λ = {key.lam}, μ = {key.mu}" if key.n.bit_length() <= SHOW_SECRETS_UP_TO_BITS
                  else f"λ, μ: hidden for keys above {SHOW_SECRETS_UP_TO_BITS} bits")
        same = ("the SAME ciphertext (deterministic: equality leaks)" if s["c1"] == s["c1_again"]
                else "a DIFFERENT ciphertext (randomized: equality hidden)")
        return [("n", "n = p·q", num(s["n"])), ("key", "key", security_label(key.n.bit_length())),
                ("secret", "secret", secret), ("r", "r", str(s["r"])),
                ("c1", "c1 = E(m1)", num(s["c1"])), ("c2", "c2 = E(m2)", num(s["c2"])),
                ("product", "c1 · c2 mod n²", num(s["product"])),
                ("decrypted-sum", "D(c1 · c2)", num(s["decrypted_sum"])),
                ("expected-sum", "(m1 + m2) mod n", num(s["expected_sum"])),
                ("c1-again", "E(m1) again", f"{num(s['c1_again'])} → {same}")]

    def _html(self, key: PaillierPrivateKey) -> str:
        body = "".join(f"<tr class='ppdl-{name}'><td style='white-space:nowrap'><b>{html.escape(label)}</b>"
                       f"</td><td style='word-break:break-all'>{html.escape(value)}</td></tr>"
                       for name, label, value in self._rows(key))
        return f"<table>{body}</table>"


class ImageEncryptionExplorer:
    """Pick an image, a regime and a key size; see the plain and the rendered cipher image."""

    def __init__(self, images: np.ndarray, labels: list[str], key_sizes: tuple[int, ...] = (1024, 2048),
                 renderer: str = "mod256", source: str = "") -> None:
        import matplotlib.pyplot as plt

        from ppdl_utils.images.encryption import ImageEncryptor

        self._plt, self._encryptor_class = plt, ImageEncryptor
        self.images, self.renderer, self.source = images, renderer, source
        style = {"description_width": "initial"}  # the default width cut the regime labels short
        self.image = w.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0,
                                description="image", style=style, layout=w.Layout(width="auto"))
        self.regime = w.Dropdown(options=[(r.label, r) for r in Regime], value=Regime.TABLE,
                                 description="regime", style=style, layout=w.Layout(width="360px"))
        self.key_bits = w.Dropdown(options=list(key_sizes), value=key_sizes[0], description="key bits",
                                   style=style, layout=w.Layout(width="auto"))
        self.note = w.HTML()
        self.output = w.Output()
        self.state: dict[str, object] = {}
        self._keys: dict[int, PaillierPrivateKey] = {}
        self._encryptors: dict[tuple, object] = {}
        for control in (self.image, self.regime, self.key_bits):
            control.observe(lambda _change: self.update(), names="value")
        controls = w.HBox([self.image, self.regime, self.key_bits], layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([controls, self.output, self.note])
        self.update()

    def _encryptor(self):
        bits, regime = self.key_bits.value, self.regime.value
        if bits not in self._keys:
            self._keys[bits] = generate_keypair(bits, allow_insecure=True)  # teaching widget, never saved
        if (bits, regime) not in self._encryptors:  # one secret table/r per (key, regime)
            self._encryptors[(bits, regime)] = self._encryptor_class(self._keys[bits], regime)
        return self._encryptors[(bits, regime)]

    def update(self) -> None:
        plain = self.images[self.image.value]
        cipher = self._encryptor().encrypt_rendered(plain[None], self.renderer, progress=False)[0]
        self.state = {"plain": plain, "cipher": cipher, "regime": self.regime.value,
                      "key_bits": self.key_bits.value}
        self.note.value = self._note()
        self.output.clear_output(wait=True)
        with self.output:
            figure = self._figure(plain, cipher)
            self._plt.show()  # the inline backend displays it here
        self._plt.close(figure)  # headless (tests): never accumulate open figures

    def _note(self) -> str:
        """Why the cipher image looks as it does, for the regimes whose look depends on the key."""
        if self.regime.value is Regime.R_ONE and self.renderer == "mod256":
            return f"<i>{html.escape(r_one_rendering(self._keys[self.key_bits.value].public).sentence())}</i>"
        return ""

    def _figure(self, plain: np.ndarray, cipher: np.ndarray):
        fig, axes = self._plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 1, 1.5]})
        axes[0].imshow(plain, cmap="gray", vmin=0, vmax=255)
        axes[0].set_title(f"plain: {self.image.label}", fontsize=10)
        axes[1].imshow(cipher, cmap="gray", vmin=0, vmax=255)
        axes[1].set_title(f"{self.regime.value.label}\n{self.renderer}, {self.key_bits.value}-bit key",
                          fontsize=9)
        axes[2].hist(plain.ravel(), bins=64, range=(0, 256), alpha=0.6, label="plain")
        axes[2].hist(cipher.ravel(), bins=64, range=(0, 256), alpha=0.6, label="cipher")
        axes[2].set(xlabel="pixel value", ylabel="pixels per bin (64 bins)")
        axes[2].set_title("pixel-value histogram", fontsize=10)
        axes[2].legend(fontsize=8)
        for ax in axes[:2]:
            ax.axis("off")
        fig.tight_layout()
        if self.source:
            stamp_source(fig, self.source, fontsize=8)
        return fig
