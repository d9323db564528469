"""Where things live: the data root, the offline ImageNet weights, and the names runs are saved under.

One place decides the defaults, so that a notebook and a module never disagree:

* the data root is ``$PPDL_DATA`` when set, else ``../shared/data`` beside the repository;
* the MobileNetV2 ImageNet weights are ``$PPDL_WEIGHTS`` when set, else the converted file under
  the data root;
* a run's name carries its data source and the quick flag, so a quick or real-data run never
  overwrites the committed synthetic outputs.  The Makefile asks this module for it
  (``python -m ppdl_utils.config run-name --data DATA --quick QUICK --suffix SUFFIX``), so the
  executed notebook's file name and the notebook's own outputs are named by one rule.
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from ppdl_utils.errors import PPDLError

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "PPDL_DATA"
WEIGHTS_ENV = "PPDL_WEIGHTS"
WEIGHTS_RELATIVE = Path("mobilenet_v2_imagenet") / "mobilenet_v2_1.0_224_no_top.weights.h5"


class WeightsError(PPDLError, ValueError):
    """A pretrained-weights file is missing or does not fit the model; the message names the path."""


def data_root() -> Path:
    """``$PPDL_DATA``, else ``../shared/data`` beside the repository (which may not exist)."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def data_path(name: str) -> Path:
    """A dataset under the data root, e.g. ``data_path("covid19_radiography_2class")``."""
    return data_root() / name


def default_weights_path() -> Path:
    """Where the offline ImageNet weights are looked for (``$PPDL_WEIGHTS`` or under the data root)."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env).expanduser().resolve() if env else data_root() / WEIGHTS_RELATIVE


def resolve_weights(weights: "str | Path | None", parameter: str = "weights") -> str | None:
    """The weights file to load, checked: None means random initialisation (said, never silent);
    ``"default"`` means :func:`default_weights_path` *if it exists*, else None; any other path must
    exist, or a :class:`WeightsError` names it and the two ways out."""
    if weights is None or str(weights).lower() in ("", "none"):
        return None
    if str(weights) == "default":
        path = default_weights_path()
        return str(path) if path.is_file() else None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"{parameter}={str(weights)!r}: no such file. Either point it at the offline ImageNet weights "
            f"({default_weights_path()}, or set ${WEIGHTS_ENV} / ${DATA_ENV}), or pass {parameter}=None to "
            f"train from random initialisation.")
    return str(path.resolve())


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label)


def run_name(data_dir: "str | Path | None", quick: bool = False, suffix: str = "") -> str:
    """The name a run's outputs are saved under: ``synthetic`` or the data folder's name
    (``covid19_radiography_2class``), ``_quick`` for quick runs, then `suffix` (e.g. ``_draw2``)."""
    base = "synthetic" if not data_dir else _safe(Path(str(data_dir)).resolve().name)
    if Path(str(data_dir or "")).suffix == ".npz":
        base = _safe(Path(str(data_dir)).stem)
    return f"{base}{'_quick' if quick else ''}{_safe(suffix) if suffix else ''}"


def is_quick(flag: "str | int | bool | None") -> bool:
    """A quick flag as papermill or make passes it: 1/True/"1" are quick; 0, "", "0", "false", "no" are not."""
    return str(flag if flag is not None else "").strip().lower() not in ("", "0", "false", "no")


def main(argv: "list[str] | None" = None) -> int:
    """``python -m ppdl_utils.config run-name --data DIR --quick 1 --suffix _x`` prints the run name."""
    parser = argparse.ArgumentParser(prog="python -m ppdl_utils.config")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run-name", help="the name a run's outputs are saved under (the Makefile asks here)")
    run.add_argument("--data", default="", help="the data folder or .npz file (empty: the synthetic default)")
    run.add_argument("--quick", default="0", help="make's QUICK (1: quick)")
    run.add_argument("--suffix", default="", help="make's SUFFIX")
    args = parser.parse_args(argv)
    print(run_name(args.data or None, is_quick(args.quick), args.suffix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
