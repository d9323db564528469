"""The ``ppdl`` command line (``[project.scripts]``; ``python -m ppdl_utils.cli`` runs the same).

``ppdl audit`` runs :mod:`ppdl_utils.analysis.audit` on a named scheme, a user's callable or a folder
of (plain, encrypted) image pairs, and prints one report per scheme (``--csv`` writes the table).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ppdl_utils.errors import PPDLError

EPILOG = """examples:
  ppdl audit --scheme aes-ecb --quick
  ppdl audit --scheme all --csv audit.csv
  ppdl audit --encrypt mypackage.cipher:encrypt --keygen mypackage.cipher:keygen
  ppdl audit --plain-dir plain/ --encrypted-dir encrypted/

The rule behind the verdict: an image encryption that a CNN can learn from is one that leaks; a
secure one puts the classifier at chance.  The verdict comes from learnability, determinism, the
distinguishing game and the attacks; entropy, NPCR, UACI and correlations are reported beside it
and never enter it.
"""


def _audit_parser(commands) -> argparse.ArgumentParser:
    from ppdl_utils.analysis.audit import SCHEMES

    parser = commands.add_parser(
        "audit", help="audit an image encryption: learnability, determinism, IND-CPA game, attacks, statistics",
        description="Audit a 'we trained on encrypted images' claim: train notebook 03's CNN on the encrypted "
                    "images, test determinism and equality leakage, play an IND-CPA-style distinguishing game, "
                    "run the kit's attacks, and report the statistics papers quote (entropy, NPCR, UACI, "
                    "correlations) beside them.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("what to audit (one of)")
    what.add_argument("--scheme", action="append", metavar="NAME",
                      help=f"a built-in scheme, repeatable, or 'all': {', '.join(SCHEMES)}")
    what.add_argument("--encrypt", metavar="MODULE:FUNCTION",
                      help="a callable encrypt(images, key) -> images: uint8 (N, H, W) in, same shape and dtype out")
    what.add_argument("--keygen", metavar="MODULE:FUNCTION",
                      help="with --encrypt: a callable keygen() -> key (default: 32 random bytes)")
    what.add_argument("--plain-dir", type=Path, help="plain images (class sub-folders give labels) ...")
    what.add_argument("--encrypted-dir", type=Path, help="... and their encrypted counterparts, same relative names")
    data = parser.add_argument_group("images")
    data.add_argument("--data-dir", help="labelled class-per-folder images (default: the embedded synthetic set)")
    data.add_argument("--image-size", type=int, default=32, help="pixels per side (default 32)")
    data.add_argument("--per-class", type=int, default=100, help="images per class (default 100; quick: 12)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds per scheme): a smoke test, "
                        "not a measurement")
    parser.add_argument("--no-learn", action="store_true", help="skip the CNN (learnability 'not run')")
    parser.add_argument("--learn-budget", type=float, metavar="SECONDS",
                        help="encrypt at most this many seconds' worth of images for the CNN (a slow callable; "
                             "the subset then depends on the machine)")
    parser.add_argument("--paillier-bits", type=int, default=2048)
    parser.add_argument("--rsa-bits", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, help="write the full table to this CSV file")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ppdl", description="ppdl study kit commands")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _audit_parser(commands)
    return parser


def _ciphers_and_data(args: argparse.Namespace):
    from ppdl_utils.analysis import audit
    from ppdl_utils.data.sources import load_chest_images

    chosen = [bool(args.scheme), bool(args.encrypt), bool(args.plain_dir or args.encrypted_dir)]
    if sum(chosen) != 1:
        raise audit.AuditError("say what to audit with exactly one of --scheme, --encrypt, or --plain-dir with "
                               "--encrypted-dir")
    if args.keygen and not args.encrypt:
        raise audit.AuditError("--keygen goes with --encrypt")
    if args.plain_dir or args.encrypted_dir:
        if not (args.plain_dir and args.encrypted_dir):
            raise audit.AuditError("--plain-dir and --encrypted-dir go together")
        pairs = audit.load_folder_pairs(args.plain_dir, args.encrypted_dir)
        name = f"folder {args.encrypted_dir.name}"
        return [audit.folder_cipher(pairs, name)], pairs.dataset(args.plain_dir.name)
    per_class = 12 if args.quick and args.per_class == 100 else args.per_class
    dataset = load_chest_images(args.data_dir, args.image_size, per_class, seed=args.seed)
    if args.encrypt:
        keygen = audit.load_callable(args.keygen, "--keygen") if args.keygen else None
        return [audit.cipher_from_callable(audit.load_callable(args.encrypt), keygen, name=args.encrypt)], dataset
    names = list(audit.SCHEMES) if "all" in args.scheme else args.scheme
    bits = dict(paillier_bits=1024 if args.quick else args.paillier_bits,
                rsa_bits=1024 if args.quick else args.rsa_bits)
    return [audit.make_cipher(name, **bits) for name in names], dataset


def report_lines(row: dict) -> list[str]:
    """A scheme's audit as a few aligned lines (the terminal view of one table row)."""
    def num(key: str, digits: int = 2) -> str:
        value = row.get(key)
        return "n/a" if value is None or value != value else f"{value:.{digits}f}"

    learn = ("not run" if row.get("accuracy") is None or row.get("accuracy") != row.get("accuracy") else
             f"{num('accuracy')} [{num('accuracy_low')}, {num('accuracy_high')}] vs chance {num('chance')} "
             f"({row.get('n_learn', '?')} images, {row.get('n_test', '?')} tested)")
    game = ("n/a (no encryption oracle)" if row.get("advantage") is None else
            f"{num('advantage')} [{num('advantage_low')}, {num('advantage_high')}] "
            f"over {row.get('game_challenges')} challenges")
    deterministic = {True: "yes", False: "no"}.get(row.get("deterministic"), "n/a (no encryption oracle)")
    return [
        f"== {row['scheme']} ({row.get('description', '')})",
        f"  learnability (CNN test accuracy)   {learn}",
        f"  deterministic                      {deterministic}",
        f"  equal pixels stay equal            {num('equal_pixel_leak')} (1 = always, 0 = never more than chance)",
        f"  histogram kept                     {num('histogram_kept')} of the images",
        f"  distinguisher advantage            {game}",
        f"  best attack                        {row['best_attack']}: SSIM {num('attack_ssim')} vs prior "
        f"{num('prior_ssim')}" + (" -> recovers the images" if row.get("recovered") else ""),
        f"  papers' statistics                 entropy {num('entropy_bits')} bits (random image: "
        f"{num('entropy_ideal')}), NPCR {num('npcr_percent')}%, UACI {num('uaci_percent')}%, corr h/v/d "
        f"{num('corr_horizontal')}/{num('corr_vertical')}/{num('corr_diagonal')}"
        + (" -> look ideal" if row.get("stats_look_ideal") else ""),
        f"  verdict                            {row['verdict']}",
    ]


def run_audit(args: argparse.Namespace) -> int:
    from ppdl_utils.analysis import audit

    ciphers, dataset = _ciphers_and_data(args)
    settings = audit.AuditSettings.for_run(args.quick, seed=args.seed, learn_budget_s=args.learn_budget)
    print(f"data: {dataset.name} ({len(dataset.images)} images of {dataset.images.shape[1]} px, "
          f"{len(dataset.class_names)} classes){' -- QUICK: a smoke test, not a measurement' if args.quick else ''}",
          flush=True)
    results = []
    for cipher in ciphers:
        result = audit.audit(cipher, dataset, settings, learn=not args.no_learn)
        results.append(result)
        print("\n".join(report_lines(result.row)), flush=True)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        audit.audit_table(results).to_csv(args.csv, index=False)
        print(f"table written to {args.csv}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_audit(args)
    except PPDLError as exc:
        print(f"ppdl {args.command}: error: {exc}", file=sys.stderr)
        return 2
