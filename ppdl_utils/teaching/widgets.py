"""ipywidgets for teaching: a Paillier playground and an image-encryption explorer.

Each widget class keeps its computed values in ``.state`` and recomputes in ``.update()``, so
the callbacks can be driven (and tested) from Python without a browser.
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np

from ppdl_utils.crypto.paillier import (PaillierPrivateKey, add_ciphertexts, decrypt_int, encrypt_int,
                       generate_keypair, keypair_from_primes, security_label)


class PaillierPlayground:
    """Two messages, their ciphertexts, the product mod n^2 and its decryption (= the sum)."""

    def __init__(self, p: int = 17, q: int = 19, m1: int = 42, m2: int = 57) -> None:
        style = {"description_width": "initial"}
        self.mode = w.ToggleButtons(options=["small primes", "bit size"], value="small primes",
                                    description="key from", style=style)
        self.p = w.IntText(value=p, description="p")
        self.q = w.IntText(value=q, description="q")
        self.bits = w.Dropdown(options=[32, 64, 128, 256, 512, 1024, 2048], value=64,
                               description="bits of n")
        self.m1 = w.IntText(value=m1, description="m1")
        self.m2 = w.IntText(value=m2, description="m2")
        self.randomized = w.Checkbox(value=True, description="fresh random r per encryption")
        self.output = w.HTML()
        self.state: dict[str, object] = {}
        self._key: PaillierPrivateKey | None = None
        self._key_source: tuple | None = None
        for control in (self.mode, self.p, self.q, self.bits, self.m1, self.m2, self.randomized):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([self.mode, w.HBox([self.p, self.q]), self.bits,
                              w.HBox([self.m1, self.m2]), self.randomized, self.output])
        self.update()

    def _current_key(self) -> PaillierPrivateKey:
        source = ((self.mode.value, self.p.value, self.q.value) if self.mode.value == "small primes"
                  else (self.mode.value, self.bits.value))
        if source != self._key_source:  # regenerate only when the key inputs change
            self._key = (keypair_from_primes(self.p.value, self.q.value)
                         if self.mode.value == "small primes" else generate_keypair(self.bits.value))
            self._key_source = source
        assert self._key is not None
        return self._key

    def update(self) -> None:
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
                          "expected_sum": (self.m1.value + self.m2.value) % pub.n, "error": None}
            self.output.value = self._html(key)
        except (ValueError, ArithmeticError) as exc:
            self.state = {"error": str(exc)}
            self.output.value = f"<b style='color:#b00'>{html.escape(str(exc))}</b>"

    def _html(self, key: PaillierPrivateKey) -> str:
        s = self.state
        secret = (f"λ = {key.lam}, μ = {key.mu}" if key.n.bit_length() <= 64
                  else "λ, μ: hidden for keys above 64 bits")
        same = "the SAME ciphertext (deterministic: equality leaks)" if s["c1"] == s["c1_again"] \
            else "a DIFFERENT ciphertext (randomized: equality hidden)"
        rows = [("n = p·q", s["n"]), ("key", security_label(key.n.bit_length())), ("secret", secret),
                ("c1 = E(m1)", s["c1"]), ("c2 = E(m2)", s["c2"]), ("c1 · c2 mod n²", s["product"]),
                ("D(c1 · c2)", s["decrypted_sum"]), ("(m1 + m2) mod n", s["expected_sum"]),
                ("E(m1) again", f"{s['c1_again']} → {same}")]
        body = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td style='word-break:break-all'>"
                       f"{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"


class ImageEncryptionExplorer:
    """Pick an image, a regime and a key size; see the plain and the rendered cipher image."""

    def __init__(self, images: np.ndarray, labels: list[str], key_sizes: tuple[int, ...] = (1024, 2048),
                 renderer: str = "mod256") -> None:
        import matplotlib.pyplot as plt

        from ppdl_utils.images.encryption import ImageEncryptor
        from ppdl_utils.crypto.regimes import Regime

        self._plt, self._encryptor_class = plt, ImageEncryptor
        self.images, self.renderer = images, renderer
        self.image = w.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0,
                                description="image")
        self.regime = w.Dropdown(options=[(r.label, r) for r in Regime], value=Regime.TABLE,
                                 description="regime")
        self.key_bits = w.Dropdown(options=list(key_sizes), value=key_sizes[0], description="key bits")
        self.output = w.Output()
        self.state: dict[str, object] = {}
        self._keys: dict[int, PaillierPrivateKey] = {}
        self._encryptors: dict[tuple, object] = {}
        for control in (self.image, self.regime, self.key_bits):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.image, self.regime, self.key_bits]), self.output])
        self.update()

    def _encryptor(self):
        bits, regime = self.key_bits.value, self.regime.value
        if bits not in self._keys:
            self._keys[bits] = generate_keypair(bits)
        if (bits, regime) not in self._encryptors:  # one secret table/r per (key, regime)
            self._encryptors[(bits, regime)] = self._encryptor_class(self._keys[bits], regime)
        return self._encryptors[(bits, regime)]

    def update(self) -> None:
        plain = self.images[self.image.value]
        cipher = self._encryptor().encrypt_rendered(plain[None], self.renderer, progress=False)[0]
        self.state = {"plain": plain, "cipher": cipher, "regime": self.regime.value,
                      "key_bits": self.key_bits.value}
        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = self._plt.subplots(1, 3, figsize=(10, 3))
            axes[0].imshow(plain, cmap="gray", vmin=0, vmax=255)
            axes[0].set_title("plain")
            axes[1].imshow(cipher, cmap="gray", vmin=0, vmax=255)
            axes[1].set_title(f"{self.regime.value.label}\n{self.renderer}, {self.key_bits.value}-bit", fontsize=8)
            axes[2].hist(plain.ravel(), bins=64, range=(0, 256), alpha=0.6, label="plain")
            axes[2].hist(cipher.ravel(), bins=64, range=(0, 256), alpha=0.6, label="cipher")
            axes[2].legend(fontsize=7)
            for ax in axes[:2]:
                ax.axis("off")
            self._plt.show()
