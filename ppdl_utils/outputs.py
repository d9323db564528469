"""Where a run's outputs live, and the manifest that says what wrote them.

Layout (``results/`` and ``figures/`` are the notebooks' ``results_dir`` and ``figures_dir``)::

    results/<run>/<NN>_<stem>.<ext>   notebook NN's tables and run records for run <run>
    results/<run>/batched.csv         bench/bench_batched_ckks.py on the dataset <run>
    results/<run>/single_image.csv    bench/bench_single_image.py on the dataset <run>
    results/<run>/MANIFEST.json       per producer: the command, git commit, date (UTC) and files
    results/bench/<name>              the other benchmarks' files
    figures/<run>/<NN>_<stem>.png

The run name is :func:`ppdl_utils.config.run_name`.  Writers ask :func:`results_path` and
:func:`figure_path` (which create the run folder and remember the path), then call
:func:`record_outputs` once at the end; readers ask :func:`run_dir`.

``python -m ppdl_utils.outputs migrate [--root .]`` moves files of the older flat layout
(``results/<NN>_<run>_<stem>.<ext>``, ``bench_<name>``, ``batched_<run>.csv``, ``single_image_<run>.csv``)
into their run folders, ``git mv`` for tracked files.  A name whose run it cannot tell is refused before anything moves.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ppdl_utils.config import REPO_ROOT
from ppdl_utils.errors import PPDLError

MANIFEST = "MANIFEST.json"
BENCH = "bench"  # the run folder of bench/*.py files that belong to no dataset run
MIGRATED = "migrated from the flat layout"
MIGRATE_PRODUCER = "python -m ppdl_utils.outputs migrate"
_SAFE_RUN = re.compile(r"[A-Za-z0-9_.+-]+")


class OutputsError(PPDLError, ValueError):
    """A run or file name that cannot name an output file, or an unreadable manifest; the message names it."""


class UnplaceableOutputError(OutputsError):
    """A flat-layout file whose run cannot be told from its name (migrate refuses it instead of guessing)."""


# --- paths --------------------------------------------------------------------------------------------

def _check_run(run: str) -> str:
    if not isinstance(run, str) or not _SAFE_RUN.fullmatch(run) or run in (".", ".."):
        raise OutputsError(f"run={run!r}: a run name is letters, digits and _.+- (ppdl_utils.config.run_name)")
    return run


def _check_name(name: str, parameter: str = "name") -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise OutputsError(f"{parameter}={name!r}: an output is a bare file name inside its run folder")
    return name


def run_dir(root: "str | Path", run: str) -> Path:
    """The folder of `run` under `root` (``results/<run>``); not created (for readers)."""
    return Path(root) / _check_run(run)


# paths handed to writers in this process, per run, with the time they were asked for: record_outputs
# lists those written since (a path asked for only to be read is older than its request, so it is left out)
_requested: dict[str, dict[Path, float]] = {}


def _hand_out(run: str, name: str, root: "str | Path") -> Path:
    folder = run_dir(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _check_name(name)
    _requested.setdefault(run, {}).setdefault(path.resolve(), time.time())
    return path


def results_path(run: str, name: str, root: "str | Path" = "results") -> Path:
    """``root/<run>/<name>`` for a writer (``results_path(run, "06_attacks.csv", results_dir)``): the run
    folder is created and the path is remembered for :func:`record_outputs`."""
    return _hand_out(run, name, root)


def figure_path(run: str, name: str, root: "str | Path" = "figures") -> Path:
    """``root/<run>/<name>.png`` for a writer (``.png`` added unless `name` has it); created and remembered."""
    return _hand_out(run, name if name.endswith(".png") else f"{name}.png", root)


def written(run: str) -> list[Path]:
    """The paths of `run` handed out in this process since its last :func:`record_outputs` that were
    written after they were asked for."""
    slack = 2.0  # file-system timestamps can lag the clock by a tick
    return [p for p, asked in _requested.get(run, {}).items() if p.is_file() and p.stat().st_mtime >= asked - slack]


# --- the manifest -------------------------------------------------------------------------------------

def _sanitise(text: str) -> str:
    """A command as it may be committed: the checkout as ``.``, the home folder as ``~``."""
    text = text.replace(str(REPO_ROOT) + os.sep, "").replace(str(REPO_ROOT), ".")
    home = os.path.expanduser("~")
    return text.replace(home, "~") if home not in ("", "/", "~") else text


def current_command() -> str:
    """What is running: ``$PPDL_COMMAND`` (the Makefile sets it to the papermill call), else, in a Jupyter
    kernel, a note that it ran outside make (the kernel's argv names only its connection file), else
    ``python`` and ``sys.argv``."""
    command = os.environ.get("PPDL_COMMAND")
    if not command:
        if "ipykernel" in sys.modules:
            command = "a Jupyter kernel outside make (no command line recorded)"
        else:
            command = " ".join(["python", *sys.argv])
    return _sanitise(command)


def git_commit(repo: "str | Path" = REPO_ROOT) -> str:
    """The short commit of `repo`, ``+dirty`` when a tracked file outside results/ and figures/ differs
    from it (the outputs being written would always make it dirty); ``unknown`` without git."""
    def git(*args: str) -> str:
        # --no-optional-locks: a status taken while another git command runs never fights it for the index
        return subprocess.run(["git", "--no-optional-locks", "-C", str(repo), *args], capture_output=True,
                              text=True, check=True, timeout=60).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results", ":!figures")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def _display(path: Path, root: Path) -> str:
    """`path` as the manifest shows it: relative to the folder holding results/ and figures/."""
    resolved, base = Path(path).resolve(), root.resolve().parent
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return "/".join(resolved.parts[-3:])


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on the run folder itself (no lock file to commit or ignore); the kernel frees it
    when the holder dies, and two notebooks of ``make -j2`` writing one run's manifest take turns."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_manifest(root: "str | Path", run: str) -> dict:
    """``root/<run>/MANIFEST.json`` (an empty manifest when there is none)."""
    path = run_dir(root, run) / MANIFEST
    if not path.is_file():
        return {"run": run, "producers": {}}
    try:
        body = json.loads(path.read_text())
    except ValueError as exc:
        raise OutputsError(f"{path} is not readable JSON ({exc}); fix or delete it") from None
    if not isinstance(body, dict) or not isinstance(body.get("producers"), dict):
        raise OutputsError(f"{path}: a manifest is an object with a 'producers' object")
    return body


def record_outputs(run: str, producer: str, files: "Iterable[str | Path] | None" = None,
                   root: "str | Path" = "results", command: str | None = None, note: str | None = None,
                   commit: str | None = None) -> Path:
    """Merge `producer`'s entry into ``root/<run>/MANIFEST.json``: its command (default
    :func:`current_command`), the git commit (:func:`git_commit`), the UTC date and `files` (default
    :func:`written`: what this process wrote for `run`).  The producer keeps the files of its earlier
    entry that still exist (a resumed notebook 03 keeps the models it did not retrain); the command,
    commit and date are this call's.  A file belongs to the producer that wrote it last, so it leaves any
    other entry (an entry left without files is dropped).  No files: the manifest is left as it is.  Safe
    when several processes record into one run at once."""
    files = written(run) if files is None else [Path(f) for f in files]
    folder = run_dir(root, run)
    shown = sorted({_display(Path(f), Path(root)) for f in files})
    if not shown:
        return folder / MANIFEST
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"command": command if command is not None else current_command(),
             "commit": commit or git_commit(),
             "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "files": shown}
    if note:
        entry["note"] = note
    with _locked(folder):
        body = read_manifest(root, run)
        producers = {}
        for name, other in body["producers"].items():
            if name != producer:
                kept = [f for f in other.get("files", []) if f not in shown]
                if kept:
                    producers[name] = {**other, "files": kept}
        base = Path(root).resolve().parent
        earlier = body["producers"].get(producer, {}).get("files", [])
        entry["files"] = sorted(set(shown) | {f for f in earlier if (base / f).is_file()})
        producers[producer] = entry
        text = json.dumps({"run": run, "producers": dict(sorted(producers.items()))}, indent=1) + "\n"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{MANIFEST}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, folder / MANIFEST)  # readers never see half a manifest
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    _requested.pop(run, None)
    return folder / MANIFEST


def record_beside(producer: str, *files: "str | Path") -> list[Path]:
    """:func:`record_outputs` for files written where a command-line option put them (``--out``): each
    folder's files go to that folder's manifest, the folder being the run (``results/bench/``)."""
    folders: dict[Path, list[Path]] = {}
    for file in map(Path, files):
        folders.setdefault(file.resolve().parent, []).append(file)
    return [record_outputs(folder.name, producer, group, root=folder.parent) for folder, group in folders.items()]


# --- the flat layout and its migration ---------------------------------------------------------------

# The run names of the flat layout: data sources, then the SUFFIX values the Makefile targets and params/
# pass (make key_draws, budget, private_pipeline; the recipes and 64 px runs of docs/results/).  A run
# name is one of DATASETS, optionally "_quick", optionally one of SUFFIXES; a run folder that already
# exists is a known run as well (its writer named it).
DATASETS = ("synthetic", "covid19_radiography_2class", "covid19_radiography_3class", "pneumoniamnist",
            "real")  # "real": notebook 05 on the osteoporosis table / knee X-rays
SUFFIXES = (r"_key\d+_split\d+", r"_draw\d+", r"_plain_split\d+", "_budget_oracle", "_budget_seriation",
            "_64px", "_recipe_20_epochs", r"_recipe_warmup_cosine_lr1e-3", r"_recipe_bn0\.99",
            "_recipe_input_table", "_recipe_seriation")
#: benchmarks that write one file per dataset into the dataset's run folder, named without a notebook number
DATASET_BENCHES = ("batched", "single_image")
_KNOWN_RUN = re.compile(f"(?:{'|'.join(map(re.escape, DATASETS))})(?:_quick)?(?:{'|'.join(SUFFIXES)})?")
_NOTEBOOK_FILE = re.compile(r"(?P<nn>\d\d)_(?P<rest>.+)")


def flat_name(run: str, name: str) -> str:
    """The flat-layout name of ``<run>/<name>``: ``03_<run>_summary.csv``, ``bench_<name>``,
    ``batched_<run>.csv`` (used to sort files as the flat layout did, and to test the migration)."""
    if run == BENCH:
        return f"bench_{name}"
    for prefix in DATASET_BENCHES:
        if name.startswith(prefix):
            return f"{prefix}_{run}{name[len(prefix):]}"
    nn, _, stem = name.partition("_")
    return f"{nn}_{run}_{stem}"


def _split_run(rest: str, known: "set[str]") -> tuple[str, str] | None:
    """``<run>_<stem>`` or ``<run>.<ext>`` -> (run, the part after the run), the longest known run first."""
    candidates = [rest[:i] for i in range(len(rest), 0, -1) if rest[i - 1:i] != "_" and
                  (i == len(rest) or rest[i] in "_.")]
    for run in candidates:
        if run in known or _KNOWN_RUN.fullmatch(run):
            return run, rest[len(run):]
    return None


def place(name: str, known: "Iterable[str]" = ()) -> tuple[str, str]:
    """The (run, file name) a flat-layout file moves to:

    * ``<NN>_<run>_<stem>.<ext>`` -> (run, ``<NN>_<stem>.<ext>``);
    * ``bench_<name>`` -> (``bench``, ``<name>``);
    * ``batched_<run>[_<more>].<ext>`` -> (run, ``batched[_<more>].<ext>``), and the same for the other
      :data:`DATASET_BENCHES`.

    The run must be a known run name (:data:`DATASETS` x ``_quick`` x :data:`SUFFIXES`, or one of `known`);
    otherwise :class:`UnplaceableOutputError` names the file."""
    known = set(known)
    if name.startswith("bench_") and len(name) > len("bench_"):
        return BENCH, name[len("bench_"):]
    bench = next((prefix for prefix in DATASET_BENCHES if name.startswith(prefix + "_")), None)
    if bench:
        split = _split_run(name[len(bench) + 1:], known)
        if split:
            return split[0], f"{bench}{split[1]}"
    else:
        match = _NOTEBOOK_FILE.fullmatch(name)
        split = match and _split_run(match["rest"], known)
        if split and split[1].startswith("_") and len(split[1]) > 1:
            return split[0], f"{match['nn']}{split[1]}"
    raise UnplaceableOutputError(
        f"{name}: cannot tell its run (known: {', '.join(DATASETS)}, with _quick and the suffixes in "
        f"ppdl_utils.outputs.SUFFIXES, or an existing run folder). Pass the run with --run NAME, or move "
        f"it by hand into its run folder")


def _tracked(root: Path) -> set[str] | None:
    """The tracked paths under results/ and figures/ (relative to `root`), None when `root` is not in git."""
    try:
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", "results", "figures"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return set(filter(None, done.stdout.split("\0"))) if done.returncode == 0 else None


def migrate(root: "str | Path" = ".", runs: Iterable[str] = (), verbose: bool = False) -> dict[str, list[str]]:
    """Move every flat file of ``root/results`` and ``root/figures`` into its run folder (``git mv`` when
    tracked) and record each migrated run's files in its manifest as migrated from the flat layout at the
    commit they came from.  Every file is placed before any moves, so an unplaceable one leaves the tree
    as it was.  Idempotent: a second run finds nothing to move.  Returns ``{run: [moved files]}``."""
    root = Path(root)
    known = set(runs) | {p.name for top in ("results", "figures") if (root / top).is_dir()
                         for p in (root / top).iterdir() if p.is_dir()}
    moves: list[tuple[Path, Path, str]] = []
    refused = []
    for top in ("results", "figures"):
        folder = root / top
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            try:
                run, name = place(path.name, known)
            except UnplaceableOutputError as error:
                refused.append(f"{top}/{error}")
                continue
            target = folder / run / name
            if target.exists() and target.read_bytes() != path.read_bytes():
                refused.append(f"{top}/{path.name}: {top}/{run}/{name} exists with other content")
                continue
            moves.append((path, target, run))
    if refused:
        raise UnplaceableOutputError("nothing was moved:\n  " + "\n  ".join(refused))
    if not moves:
        return {}
    commit = git_commit(root)
    tracked = _tracked(root)
    moved: dict[str, list[str]] = {}
    for source, target, run in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        relative = source.relative_to(root).as_posix()
        if target.exists():  # the same file already moved (an interrupted migration): drop the copy
            if tracked is not None and relative in tracked:
                subprocess.run(["git", "-C", str(root), "rm", "-q", "--", relative], check=True)
            else:
                source.unlink()
        elif tracked is not None and relative in tracked:
            subprocess.run(["git", "-C", str(root), "mv", "--", relative, target.relative_to(root).as_posix()],
                           check=True)
        else:
            source.rename(target)
        moved.setdefault(run, []).append(target.relative_to(root).as_posix())
        if verbose:
            print(f"{relative} -> {target.relative_to(root).as_posix()}")
    for run, files in moved.items():
        record_outputs(run, MIGRATE_PRODUCER, [root / f for f in files], root=root / "results",
                       command=MIGRATE_PRODUCER, note=f"{MIGRATED} (files as of commit {commit})", commit=commit)
    return moved


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ppdl_utils.outputs", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    move = commands.add_parser("migrate", help="move flat results/ and figures/ files into their run folders")
    move.add_argument("--root", type=Path, default=Path("."), help="the folder holding results/ and figures/")
    move.add_argument("--run", action="append", default=[], metavar="NAME",
                      help="a run name to recognise besides the known ones (repeatable)")
    move.add_argument("-v", "--verbose", action="store_true", help="print every move")
    args = parser.parse_args(argv)
    try:
        moved = migrate(args.root, args.run, args.verbose)
    except UnplaceableOutputError as error:
        print(error, file=sys.stderr)
        return 1
    total = sum(len(v) for v in moved.values())
    print(f"moved {total} file(s) into {len(moved)} run folder(s)" if total else "nothing to move: no flat files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
