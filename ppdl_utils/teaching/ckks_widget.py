"""A CKKS playground: pick a ring, a scale and a modulus chain, encrypt a small vector, multiply it
by itself again and again, and watch the error grow, the chain shrink and the ciphertext get smaller.

The logic lives in :func:`ckks_depth_demo` (plain function, testable); :func:`ckks_playground`
wraps it in ipywidgets.  Errors are shown in red in the output, never swallowed.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import pandas as pd
import tenseal as ts

from ppdl_utils.crypto import ckks

__all__ = ["parse_chain", "playground_params", "security_label", "ckks_depth_demo", "CKKSPlayground",
           "ckks_playground"]

RINGS = (2048, 4096, 8192, 16384)


def parse_chain(text: str, scale_bits: int, edge_bits: int | None = None) -> tuple[int, ...]:
    """``"60,40,40,60"`` -> that chain; ``"3"`` -> ``(edge, scale, scale, scale, edge)``.

    ``edge`` defaults to ``min(60, scale_bits + 20)`` (room for the integer part / key switching).

    Raises:
        CKKSParameterError: the text is neither a comma list of integers nor one integer >= 0.
    """
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise ckks.CKKSParameterError(f"modulus chain {text!r}: expected bit sizes like '60,40,40,60' "
                                      f"or a number of middle primes like '2'")
    if len(parts) == 1:
        edge = edge_bits or min(60, scale_bits + 20)
        return (edge,) + (scale_bits,) * int(parts[0]) + (edge,)
    return tuple(int(p) for p in parts)


def playground_params(ring: int, scale_bits: int, chain_text: str) -> ckks.CKKSParams:
    """Parameter set from the three controls (validated, security not yet checked)."""
    params = ckks.CKKSParams(int(ring), parse_chain(chain_text, scale_bits), int(scale_bits), "playground")
    ckks.validate_params(params)
    return params


def security_label(params: ckks.CKKSParams) -> str:
    """``"128-bit ..."`` when the chain fits the HE-standard table, else ``"INSECURE ..."``."""
    try:
        bits = ckks.security_bits(params)
    except (ckks.InsecureParametersError, ckks.CKKSParameterError) as exc:
        return f"INSECURE: {exc}"
    if bits == 0:
        return ckks.INSECURE_LABEL
    limit = ckks.HE_STANDARD_MAX_LOGQ[params.poly_modulus_degree]
    return f"{bits}-bit classical security (HE standard: {params.total_bits} <= {limit} bits)"


def _row(step: int, operation: str, vector: ts.CKKSVector, plain: np.ndarray, label: str) -> dict:
    decrypted = ckks.decrypt(vector)[: len(plain)]
    return {"step": step, "operation": operation, "max_abs_error": float(np.abs(decrypted - plain).max()),
            "remaining_depth": ckks.remaining_depth(vector), "ciphertext_bytes": ckks.ciphertext_bytes(vector),
            "scale_bits": float(np.log2(vector.ciphertext()[0].scale)), "security": label}


def ckks_depth_demo(params: ckks.CKKSParams, values: "list[float] | np.ndarray", n_mults: int) -> pd.DataFrame:
    """Encrypt ``values``, then ``n_mults`` times multiply the ciphertext by the fresh encryption.

    Step ``k`` holds ``values ** (k + 1)``: its max abs error vs the plaintext, the multiplications
    still possible (primes left - 1), the serialized size and the scale.

    Raises:
        DepthExhaustedError: ``n_mults`` exceeds the chain; ``.table`` holds the rows computed so far.
        InsecureParametersError / CKKSParameterError: parameters over the table or malformed.
    """
    plain0 = np.asarray(values, dtype=np.float64).ravel()
    label = security_label(params)
    ctx = ckks.make_context(params, galois=False)  # no rotations needed: keep it fast
    base = ts.ckks_vector(ctx, plain0.tolist())
    vector, plain = base, plain0.copy()
    rows = [_row(0, "encrypt", vector, plain, label)]
    for k in range(1, int(n_mults) + 1):
        try:
            vector = ckks.checked_mul(vector, base, f"multiplication {k} of {n_mults}")
        except ckks.DepthExhaustedError as exc:
            exc.table = pd.DataFrame(rows)
            raise
        plain = plain * plain0
        rows.append(_row(k, f"x^{k + 1}", vector, plain, label))
    return pd.DataFrame(rows)


def _red(exc: Exception) -> str:
    return f'<p style="color:#c00"><b>{type(exc).__name__}</b>: {html.escape(str(exc))}</p>'


class CKKSPlayground(widgets.VBox):
    """The widget: ring, scale bits, chain, multiplications; a Run button; an HTML output."""

    def __init__(self, ring: int = 8192, scale_bits: int = 40, chain: str = "60,40,40,60", n_mults: int = 2,
                 values: tuple[float, ...] = (0.9, -0.5, 0.25, 1.0)):
        self.values = list(values)
        self.ring = widgets.Dropdown(options=list(RINGS), value=ring, description="ring N")
        self.scale_bits = widgets.IntSlider(value=scale_bits, min=10, max=59, description="scale bits")
        self.chain = widgets.Text(value=chain, description="chain", placeholder="60,40,40,60 or 2")
        self.n_mults = widgets.IntSlider(value=n_mults, min=1, max=12, description="multiplies")
        self.button = widgets.Button(description="Encrypt and multiply", button_style="primary")
        self.security = widgets.HTML()
        self.output = widgets.HTML()
        self.table: pd.DataFrame | None = None
        self.error: Exception | None = None
        self.button.on_click(lambda _: self.run())
        super().__init__([widgets.HBox([self.ring, self.scale_bits]), widgets.HBox([self.chain, self.n_mults]),
                          self.button, self.security, self.output])
        self.run()

    def run(self) -> None:
        """Recompute from the controls; any error ends up red in ``output`` (and in ``self.error``)."""
        self.table, self.error, partial = None, None, None
        self.security.value = ""
        try:
            params = playground_params(self.ring.value, self.scale_bits.value, self.chain.value)
            label = security_label(params)
            colour = "#c00" if label.startswith("INSECURE") else "#060"
            self.security.value = f'<p style="color:{colour}">{html.escape(ckks.describe(params))}</p>'
            self.table = ckks_depth_demo(params, self.values, self.n_mults.value)
        except ckks.DepthExhaustedError as exc:
            self.error, partial = exc, getattr(exc, "table", None)
        except (ckks.CKKSParameterError, ckks.InsecureParametersError, ValueError) as exc:
            self.error = exc
        shown = self.table if self.table is not None else partial
        body = shown.to_html(index=False, float_format=lambda v: f"{v:.3g}") if shown is not None else ""
        self.output.value = (_red(self.error) if self.error else "") + body


def ckks_playground(**defaults) -> CKKSPlayground:
    """The CKKS playground widget (display it in a notebook cell)."""
    return CKKSPlayground(**defaults)
