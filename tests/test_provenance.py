"""Which code made a run (issue 21 item 5): final.json records the lt-bench version, the git
commit and whether the package's source differed from it; code_difference says how a run's code
differs from the code now."""

import shutil
import subprocess
import sys

import pytest

import lt_bench
from lt_bench import provenance
from lt_bench.provenance import code_difference, code_identity

NOW = {"lt_bench": "0.2.0", "git_commit": "a" * 40, "git_dirty": False, "source_sha1": None}


def test_the_same_code_is_no_difference():
    assert code_difference(dict(NOW), NOW) is None


@pytest.mark.parametrize(
    "change, says",
    [
        ({"lt_bench": "0.1.0"}, "lt-bench 0.1.0 (now 0.2.0)"),
        ({"git_commit": "b" * 40}, "commit bbbbbbbb (now aaaaaaaa)"),
        ({"git_dirty": True, "source_sha1": "123"}, "other uncommitted changes to lt_bench/"),
    ],
)
def test_each_kind_of_difference_is_named(change, says):
    assert code_difference({**NOW, **change}, NOW) == says


def test_runs_that_record_no_code_are_not_flagged():
    assert code_difference(None, NOW) is None
    assert code_difference({"python": "3.11"}, NOW) is None


def test_without_a_commit_on_either_side_only_the_version_is_compared():
    assert code_difference({**NOW, "git_commit": None}, NOW) is None
    assert code_difference(NOW, {**NOW, "git_commit": None, "source_sha1": "x"}) is None
    assert code_difference({**NOW, "git_commit": None, "lt_bench": "0.1.0"}, NOW) == (
        "lt-bench 0.1.0 (now 0.2.0)"
    )


def test_this_checkout_records_its_version_commit_and_dirtiness():
    identity = code_identity()
    assert identity["lt_bench"] == lt_bench.__version__
    if shutil.which("git") is None or not (provenance.PACKAGE.parent / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=provenance.PACKAGE, capture_output=True, text=True
    ).stdout.strip()
    assert identity["git_commit"] == head
    assert identity["git_dirty"] == (identity["source_sha1"] is not None)


def test_an_installed_copy_outside_a_checkout_records_no_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "PACKAGE", tmp_path / "lt_bench")
    (tmp_path / "lt_bench").mkdir()
    provenance.code_identity.cache_clear()
    try:
        identity = provenance.code_identity()
    finally:
        provenance.code_identity.cache_clear()
    assert identity == {**identity, "git_commit": None, "git_dirty": None, "source_sha1": None}


def test_an_uncommitted_change_or_new_module_changes_the_source_hash(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("no git")
    repo = tmp_path / "repo"
    package = repo / "lt_bench"
    package.mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "PACKAGE", package)

    def identity():
        provenance.code_identity.cache_clear()
        return provenance.code_identity()

    try:
        clean = identity()
        assert clean["git_commit"] and clean["git_dirty"] is False and clean["source_sha1"] is None
        (package / "a.py").write_text("x = 2\n")
        edited = identity()
        assert edited["git_dirty"] is True and edited["source_sha1"]
        (package / "b.py").write_text("y = 1\n")
        added = identity()
        assert added["source_sha1"] not in (None, edited["source_sha1"])
        assert code_difference(edited, added) == "other uncommitted changes to lt_bench/"
    finally:
        provenance.code_identity.cache_clear()


def test_final_json_records_the_code(tmp_path):
    from lt_bench.config import load_config
    from lt_bench.engine import train
    from tests.conftest import tiny

    final = train(
        load_config(None, [*tiny("optim.epochs=1", "data.ratio=3", train=8, test=2), f"out_dir={tmp_path}"])
    )
    assert {k: final["versions"][k] for k in provenance.KEYS} == {
        k: code_identity()[k] for k in provenance.KEYS
    }
    assert "git_dirty" in final["versions"] and final["versions"]["python"] == sys.version.split()[0]
