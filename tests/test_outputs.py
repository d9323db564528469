"""ppdl_utils.outputs: run folders, the manifest (merged, safe under concurrent writers), the migration."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
from pathlib import Path

import pytest

from ppdl_utils import outputs
from ppdl_utils.errors import PPDLError
from ppdl_utils.outputs import (
    BENCH,
    MANIFEST,
    OutputsError,
    UnplaceableOutputError,
    figure_path,
    flat_name,
    migrate,
    place,
    read_manifest,
    record_outputs,
    results_path,
    run_dir,
    written,
)

ROOT = Path(__file__).resolve().parents[1]


def test_paths_sit_in_the_run_folder_and_are_created(tmp_path):
    path = results_path("synthetic_quick", "06_attacks.csv", tmp_path / "results")
    assert path == tmp_path / "results" / "synthetic_quick" / "06_attacks.csv" and path.parent.is_dir()
    assert figure_path("synthetic", "06_attacks_recovered", tmp_path / "figures").name == "06_attacks_recovered.png"
    assert figure_path("synthetic", "x.png", tmp_path / "figures").name == "x.png"
    assert run_dir(tmp_path, "other") == tmp_path / "other" and not (tmp_path / "other").exists()


@pytest.mark.parametrize("run, name", [("", "a.csv"), ("../up", "a.csv"), ("a/b", "a.csv"), ("..", "a.csv"),
                                       ("ok", ""), ("ok", "../a.csv"), ("ok", "sub/a.csv"), (None, "a.csv")])
def test_bad_run_or_file_names_are_refused(tmp_path, run, name):
    with pytest.raises(OutputsError, match="run=|name="):
        results_path(run, name, tmp_path)


def test_the_manifest_lists_what_was_written_not_what_was_read(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    old = results_path("r", "03_plain.json", results)
    old.write_text("{}")
    os.utime(old, (1, 1))  # written long before this process asked for it: a file it only reads
    results_path("r", "08_ladder.csv", results).write_text("a\n1\n")
    figure_path("r", "08_ladder", figures).write_bytes(b"png")
    results_path("r", "08_never_written.csv", results)
    assert {p.name for p in written("r")} == {"08_ladder.csv", "08_ladder.png"}
    manifest = record_outputs("r", "notebooks/08_privacy_ladder.ipynb", root=results, command="make 08_privacy_ladder")
    entry = json.loads(manifest.read_text())["producers"]["notebooks/08_privacy_ladder.ipynb"]
    assert entry["files"] == ["figures/r/08_ladder.png", "results/r/08_ladder.csv"]
    assert entry["command"] == "make 08_privacy_ladder" and entry["date"].endswith("Z") and entry["commit"]
    assert written("r") == []  # recorded: the next record_outputs starts afresh
    before = manifest.read_text()
    record_outputs("r", "notebooks/08_privacy_ladder.ipynb", root=results)  # wrote nothing since: kept as it was
    assert manifest.read_text() == before


def test_the_manifest_merges_producers_and_a_file_moves_to_its_last_writer(tmp_path):
    record_outputs("r", "notebooks/03_training.ipynb", [tmp_path / "r" / "03_a.json", tmp_path / "r" / "03_b.json"],
                   tmp_path, command="x")
    record_outputs("r", "notebooks/04_results.ipynb", [tmp_path / "r" / "04_c.csv"], tmp_path, command="y")
    record_outputs("r", "migrate", [tmp_path / "r" / "03_b.json"], tmp_path, command="z")
    producers = read_manifest(tmp_path, "r")["producers"]
    assert producers["notebooks/03_training.ipynb"]["files"] == [f"{tmp_path.name}/r/03_a.json"]
    assert producers["migrate"]["files"] == [f"{tmp_path.name}/r/03_b.json"]
    assert list(producers) == sorted(producers)
    record_outputs("r", "notebooks/05.ipynb", [tmp_path / "r" / "04_c.csv"], tmp_path, command="y")
    assert "notebooks/04_results.ipynb" not in read_manifest(tmp_path, "r")["producers"]  # left without files


def test_a_producer_keeps_its_earlier_files_that_still_exist(tmp_path):
    """A resumed notebook 03 rewrites only the models it retrains: the kept ones stay in its entry."""
    for name in ("03_plain.json", "03_table.json", "03_gone.json"):
        (tmp_path / "r").mkdir(exist_ok=True)
        (tmp_path / "r" / name).write_text("{}")
    record_outputs("r", "nb03", [tmp_path / "r" / n for n in ("03_plain.json", "03_table.json", "03_gone.json")],
                   tmp_path, command="first")
    (tmp_path / "r" / "03_gone.json").unlink()
    record_outputs("r", "nb03", [tmp_path / "r" / "03_table.json"], tmp_path, command="resumed")
    entry = read_manifest(tmp_path, "r")["producers"]["nb03"]
    assert entry["files"] == [f"{tmp_path.name}/r/03_plain.json", f"{tmp_path.name}/r/03_table.json"]
    assert entry["command"] == "resumed"


def test_the_command_names_no_home_or_checkout_path(monkeypatch):
    monkeypatch.setenv("PPDL_COMMAND", f"papermill {ROOT}/notebooks/03_training.ipynb -p data_dir "
                                       f"{os.path.expanduser('~')}/data/x")
    command = outputs.current_command()
    assert str(ROOT) not in command and os.path.expanduser("~") not in command
    assert "notebooks/03_training.ipynb" in command and "~/data/x" in command


def test_git_commit_without_git_is_unknown(tmp_path, monkeypatch):
    assert outputs.git_commit(tmp_path) == "unknown"  # not a checkout
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert outputs.git_commit(ROOT) == "unknown"


def test_an_unreadable_manifest_is_named(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / MANIFEST).write_text("{")
    with pytest.raises(OutputsError, match=MANIFEST):
        record_outputs("r", "p", [tmp_path / "r" / "a.csv"], tmp_path, command="x")


def _record_many(root: str, producer: str, n: int) -> None:
    for i in range(n):
        record_outputs("r", producer, [Path(root) / "r" / f"{producer}_{i}.csv"], root, command=producer,
                       commit="abc")


def test_two_processes_recording_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_many, args=(str(tmp_path), name, 40)) for name in ("p1", "p2")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    producers = read_manifest(tmp_path, "r")["producers"]
    assert set(producers) == {"p1", "p2"}
    assert producers["p1"]["files"] == [f"{tmp_path.name}/r/p1_39.csv"]
    assert not [p for p in (tmp_path / "r").iterdir() if p.name != MANIFEST]  # no temp file left behind


# --- the flat layout ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flat, run, name", [
    ("01_synthetic_keysize_timing.csv", "synthetic", "01_keysize_timing.csv"),
    ("03_covid19_radiography_2class_budget_oracle_budget_curves.csv", "covid19_radiography_2class_budget_oracle",
     "03_budget_curves.csv"),
    ("03_covid19_radiography_2class_plain_split2_plain.json", "covid19_radiography_2class_plain_split2",
     "03_plain.json"),
    ("03_covid19_radiography_2class_recipe_bn0.99_table_history.csv", "covid19_radiography_2class_recipe_bn0.99",
     "03_table_history.csv"),
    ("03_synthetic_quick_table+input_table.json", "synthetic_quick", "03_table+input_table.json"),
    ("04_covid19_radiography_3class_key12_split3_table_plain.csv", "covid19_radiography_3class_key12_split3",
     "04_table_plain.csv"),
    ("05_real_scheme_comparison.md", "real", "05_scheme_comparison.md"),
    ("08_pneumoniamnist_privacy_ladder.csv", "pneumoniamnist", "08_privacy_ladder.csv"),
    ("09_covid19_radiography_2class_64px_claim_audit.png", "covid19_radiography_2class_64px", "09_claim_audit.png"),
    ("batched_covid19_radiography_3class.csv", "covid19_radiography_3class", "batched.csv"),
    ("batched_covid19_radiography_2class_rung4.png", "covid19_radiography_2class", "batched_rung4.png"),
    ("single_image_covid19_radiography_2class.csv", "covid19_radiography_2class", "single_image.csv"),
    ("bench_private_pipeline_covid19_radiography_2class_training.csv", BENCH,
     "private_pipeline_covid19_radiography_2class_training.csv"),
    ("bench_privacy_ladder_synthetic.csv", BENCH, "privacy_ladder_synthetic.csv"),
])
def test_flat_names_are_placed_and_round_trip(flat, run, name):
    assert place(flat) == (run, name)
    assert flat_name(run, name) == flat


@pytest.mark.parametrize("flat", ["probe_hardening.json", "03_mydata_summary.csv", "03_synthetic.csv",
                                  "batched_mydata.csv", "notes.txt", "bench_"])
def test_a_name_of_no_known_run_is_refused(flat):
    with pytest.raises(UnplaceableOutputError, match=flat.replace(".", r"\.")):
        place(flat)
    assert issubclass(UnplaceableOutputError, PPDLError)


def test_a_run_given_or_found_as_a_folder_is_known():
    assert place("03_mydata_quick_summary.csv", {"mydata_quick"}) == ("mydata_quick", "03_summary.csv")


def _flat_tree(root: Path) -> None:
    (root / "results").mkdir(parents=True)
    (root / "figures").mkdir()
    for name in ("03_synthetic_summary.csv", "03_synthetic_table.json", "08_synthetic_privacy_ladder.csv",
                 "batched_covid19_radiography_2class.csv", "bench_schemes.json"):
        (root / "results" / name).write_text(name)
    for name in ("08_synthetic_privacy_ladder.png", "batched_covid19_radiography_2class.png"):
        (root / "figures" / name).write_text(name)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)


def test_migrate_moves_flat_files_writes_manifests_and_is_idempotent(tmp_path):
    _flat_tree(tmp_path)
    moved = migrate(tmp_path)
    assert set(moved) == {"synthetic", "covid19_radiography_2class", BENCH}
    assert _files(tmp_path) == [
        "figures/covid19_radiography_2class/batched.png", "figures/synthetic/08_privacy_ladder.png",
        "results/bench/MANIFEST.json", "results/bench/schemes.json",
        "results/covid19_radiography_2class/MANIFEST.json", "results/covid19_radiography_2class/batched.csv",
        "results/synthetic/03_summary.csv", "results/synthetic/03_table.json",
        "results/synthetic/08_privacy_ladder.csv", "results/synthetic/MANIFEST.json"]
    assert (tmp_path / "results" / "synthetic" / "03_table.json").read_text() == "03_synthetic_table.json"
    entry = read_manifest(tmp_path / "results", "synthetic")["producers"][outputs.MIGRATE_PRODUCER]
    assert outputs.MIGRATED in entry["note"] and "figures/synthetic/08_privacy_ladder.png" in entry["files"]
    before = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file()}
    assert migrate(tmp_path) == {}  # nothing left to move, nothing rewritten
    assert {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file()} == before
    # a file added later in the flat layout (another branch's new output) joins its run folder
    (tmp_path / "results" / "08_synthetic_privacy_ladder_rungs.csv").write_text("x")
    assert migrate(tmp_path) == {"synthetic": ["results/synthetic/08_privacy_ladder_rungs.csv"]}


def test_migrate_refuses_an_unknown_name_before_moving_anything(tmp_path):
    _flat_tree(tmp_path)
    (tmp_path / "results" / "07_mydata_private_inference.csv").write_text("x")
    before = _files(tmp_path)
    with pytest.raises(UnplaceableOutputError, match="07_mydata_private_inference.csv"):
        migrate(tmp_path)
    assert _files(tmp_path) == before
    assert outputs.main(["migrate", "--root", str(tmp_path)]) == 1
    assert outputs.main(["migrate", "--root", str(tmp_path), "--run", "mydata"]) == 0
    assert (tmp_path / "results" / "mydata" / "07_private_inference.csv").is_file()


def test_migrate_uses_git_mv_for_tracked_files(tmp_path):
    _flat_tree(tmp_path)
    (tmp_path / "results" / "01_synthetic_untracked.csv").write_text("u")

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout
    git("init", "-q")
    git("add", "figures", *(f"results/{n}" for n in ("03_synthetic_summary.csv", "bench_schemes.json")))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "flat")
    migrate(tmp_path)
    staged = git("status", "--porcelain")
    assert "R  results/03_synthetic_summary.csv -> results/synthetic/03_summary.csv" in staged
    assert "R  figures/08_synthetic_privacy_ladder.png -> figures/synthetic/08_privacy_ladder.png" in staged
    assert (tmp_path / "results" / "synthetic" / "01_untracked.csv").is_file()
    commit = git("rev-parse", "--short", "HEAD").strip()
    assert commit in read_manifest(tmp_path / "results", "synthetic")["producers"][outputs.MIGRATE_PRODUCER]["note"]


def test_every_committed_output_sits_in_a_run_folder():
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", "results", "figures"], capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    flat = [p for p in tracked if p.count("/") != 2]
    assert not flat, f"outputs outside a run folder (python -m ppdl_utils.outputs migrate moves them): {flat[:5]}"
    for path in tracked:
        top, run, _ = path.split("/")
        assert (ROOT / "results" / run / MANIFEST).is_file(), f"{path}: its run has no results/{run}/{MANIFEST}"
