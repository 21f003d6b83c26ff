"""``retrain`` refuses, with one line and exit 2 and before anything is written, stage options out
of range and a damaged parent (final.json, checkpoint, a split.json its config no longer draws);
every child it starts ends done or failed with error.log (an interrupt leaves it to be redone); the
child's lock keeps two retrains of one child apart; a done child of other options is not reused."""

import json
import shutil

import pytest

from lt_bench.errors import UserError
from lt_bench.rundir import ERROR_LOG, RunDir, RunLocked, child_path
from lt_bench.stages import retrain
from lt_bench.stages.ncm import NearestClassMean
from tests.test_eval_cli import files, refused
from tests.test_stages import train_parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_parent(tmp_path_factory.mktemp("runs"))


@pytest.fixture
def parent(trained, tmp_path):
    """A copy of the finished parent, alone in its folder: damage it, or let a child appear."""
    return shutil.copytree(trained, tmp_path / trained.name)


@pytest.mark.parametrize(
    "stage, option, message",
    [
        ("crt", "stage.lr=nan", "stage.lr='nan' must be a number"),  # YAML's NaN is .nan
        ("crt", "stage.lr=.nan", "stage.lr=nan is out of range; allowed: > 0"),
        ("crt", "stage.lr=.inf", "stage.lr=inf is out of range; allowed: > 0"),
        ("lws", "stage.lr=-0.1", "stage.lr=-0.1 is out of range; allowed: > 0"),
        ("crt", "stage.epochs=0", "stage.epochs=0 is out of range; allowed: >= 1"),
        ("tau_norm", "stage.taus=[0.5,.nan]", "stage.taus=[0.5, nan] is out of range; allowed: >= 0"),
        ("tau_norm", "stage.taus=[-1]", "stage.taus=[-1] is out of range; allowed: >= 0"),
        ("tau_norm", "stage.taus=[]", "stage.taus is empty; give the taus to try"),
        ("crt", "stage.epochs={a:1}", "stage.epochs: 'a:1' looks like key:value without a space"),
    ],
)
def test_stage_options_out_of_range_are_refused(parent, capsys, stage, option, message):
    argv = ["retrain", str(parent), "--stage", stage, option]
    refused(argv, capsys, message, parent.parent)


def test_a_damaged_parent_final_json_is_named(parent, capsys):
    final = parent / "final.json"
    final.write_text(final.read_text()[:30])
    refused(["retrain", str(parent), "--stage", "ncm"], capsys, f"{final} is damaged", parent.parent)


@pytest.mark.parametrize("cut", [0.5, 0.0])
def test_a_damaged_parent_checkpoint_is_named(parent, capsys, cut):
    checkpoint = parent / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: int(checkpoint.stat().st_size * cut)])
    err = refused(
        ["retrain", str(parent), "--stage", "ncm"], capsys, f"{checkpoint} is damaged", parent.parent
    )
    assert f"train the parent {parent} again" in err


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda split: split.update(sha256="0" * 64), "(sha256 differ)"),
        (lambda split: split.update(seed=7), "(seed differ)"),
        (lambda split: split.update(ratio=5.0, counts=[60, 40, 20, 10, 6]), "(ratio, counts differ)"),
    ],
)
def test_a_parent_split_its_config_no_longer_draws_is_refused(parent, capsys, edit, message):
    path = parent / "split.json"
    split = json.loads(path.read_text())
    edit(split)
    path.write_text(json.dumps(split))
    err = refused(["retrain", str(parent), "--stage", "ncm"], capsys, message, parent.parent)
    assert f"{path} does not match the split the parent's config draws" in err


def test_a_parent_without_split_json_is_refused(parent, capsys):
    (parent / "split.json").unlink()
    refused(
        ["retrain", str(parent), "--stage", "ncm"], capsys, "split.json is missing", parent.parent
    )


def test_a_stage_that_raises_ends_its_child_failed_with_error_log(parent, capsys, monkeypatch):
    def broken(self, setup, cfg, run):
        raise RuntimeError("boom")

    monkeypatch.setattr(NearestClassMean, "fit", broken)
    with pytest.raises(RuntimeError, match="boom"):
        retrain(parent, "ncm")
    child = RunDir(child_path(parent, "ncm"))
    assert child.status() == "failed" and child.error() == "RuntimeError: boom"
    assert "RuntimeError: boom" in (child / ERROR_LOG).read_text() and not child.is_locked()
    monkeypatch.undo()  # fixed: the next retrain redoes the child, the old error.log goes
    assert retrain(parent, "ncm")["status"] == "done"
    assert child.status() == "done" and not (child / ERROR_LOG).exists()


def test_an_interrupted_stage_leaves_its_child_to_be_redone(parent, monkeypatch):
    def interrupted(self, setup, cfg, run):
        raise KeyboardInterrupt

    monkeypatch.setattr(NearestClassMean, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        retrain(parent, "ncm")
    child = RunDir(child_path(parent, "ncm"))
    assert child.status() == "incomplete" and not (child / ERROR_LOG).exists()
    monkeypatch.undo()
    assert retrain(parent, "ncm")["status"] == "done"


def test_a_child_being_retrained_elsewhere_is_refused_and_left_alone(parent, capsys):
    child = RunDir(child_path(parent, "ncm"))
    with child.lock():  # another process retraining the same child
        before = files(parent.parent)
        with pytest.raises(RunLocked):
            retrain(parent, "ncm")
        assert files(parent.parent) == before  # not marked failed: it is not this process's
        refused(
            ["retrain", str(parent), "--stage", "ncm"],
            capsys,
            "is being trained by another process",
            parent.parent,
        )
    assert retrain(parent, "ncm")["status"] == "done"


def test_a_done_child_is_reused_only_with_the_same_options(parent, capsys):
    first = retrain(parent, "tau_norm", ["stage.taus=[0.0,1.0]"])
    assert retrain(parent, "tau_norm", ["stage.taus=[0.0,1.0]"]) == first  # a repeat: a no-op
    with pytest.raises(UserError, match=r"its config differs \(stage.taus"):
        retrain(parent, "tau_norm", ["stage.taus=[0.5]"])
    refused(
        ["retrain", str(parent), "--stage", "tau_norm", "stage.taus=[0.5]"],
        capsys,
        "cannot reuse the finished child run",
        parent.parent,
    )
    assert retrain(parent, "tau_norm", ["stage.taus=[0.5]", "name=tau_half"])["tau"] == 0.5
