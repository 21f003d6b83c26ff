"""``lt-bench eval`` refuses, with one line and exit 2 and before anything is written: options out
of range (NaN, infinite, negative tau), a run that is not finished, damaged features.npz,
checkpoint or final.json, and a run whose lock another process holds. Following the fix works."""

import json
import shutil
from pathlib import Path

import pytest

from lt_bench.cli import main
from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.errors import UserError
from lt_bench.predict import evaluate_run
from lt_bench.rundir import RunDir
from tests.conftest import tiny


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what "nothing changed on disk" compares."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def refused(argv: list[str], capsys, message: str, folder: Path) -> str:
    """``main(argv)`` exits 2 with one line holding ``message``, no traceback, and leaves every
    file under ``folder`` as it was (none added, none changed)."""
    before = files(folder)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err
    assert files(folder) == before
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny finished run (one epoch), copied by each test that damages it."""
    out = tmp_path_factory.mktemp("runs")
    train(load_config(None, tiny("data.ratio=4", "optim.epochs=1", f"out_dir={out}", "name=run")))
    return out / "run"


@pytest.fixture
def run(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


@pytest.mark.parametrize("tau", ["nan", "inf", "-1", "-inf"])
def test_a_posthoc_tau_out_of_range_is_refused(run, capsys, tau):
    err = refused(["eval", str(run), f"--posthoc-tau={tau}"], capsys, "posthoc_tau=", run.parent)
    assert "is out of range; allowed: >= 0" in err


def test_train_features_must_be_a_boolean(run):
    with pytest.raises(UserError, match="train_features=1 must be true or false"):
        evaluate_run(run, train_features=1)


@pytest.mark.parametrize("state", ["running", "failed", "no final.json"])
def test_an_unfinished_run_is_refused(run, capsys, state):
    if state == "no final.json":  # killed before it wrote one
        (run / "final.json").unlink()
        shown = "incomplete"
    else:
        (run / "final.json").write_text(json.dumps({"status": state, "run_id": "x"}))
        shown = state
    refused(
        ["eval", str(run)],
        capsys,
        f"{run} is not finished (status {shown}); train or --resume it first",
        run.parent,
    )


def test_a_damaged_features_file_is_named_and_its_fix_works(run, capsys):
    features = run / "features.npz"
    features.write_bytes(features.read_bytes()[: features.stat().st_size // 2])
    err = refused(["eval", str(run)], capsys, f"{features} is damaged", run.parent)
    assert f"delete it and rerun lt-bench eval {run} (it is recomputed from the checkpoint)" in err
    features.unlink()
    assert main(["eval", str(run)]) == 0
    assert 0 <= RunDir(run).final()["top1"] <= 1 and features.exists()


def test_a_features_file_missing_an_array_is_named(run, capsys):
    import numpy as np

    with np.load(run / "features.npz") as saved:
        arrays = {k: saved[k] for k in saved.files if k != "logits"}
    np.savez(run / "features.npz", **arrays)
    refused(["eval", str(run)], capsys, "features.npz is damaged (ValueError: no logits)", run.parent)


@pytest.mark.parametrize("cut", [0.5, 0.0])
def test_a_damaged_checkpoint_is_named(run, capsys, cut):
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: int(checkpoint.stat().st_size * cut)])
    err = refused(
        ["eval", str(run), "--train-features"], capsys, f"{checkpoint} is damaged", run.parent
    )
    assert f"train {run} again" in err


def test_a_damaged_final_json_is_named(run, capsys):
    final = run / "final.json"
    final.write_text(final.read_text()[:40])
    refused(["eval", str(run)], capsys, f"{final} is damaged", run.parent)


def test_a_run_locked_by_another_process_is_refused(run, capsys):
    with RunDir(run).lock():
        refused(["eval", str(run)], capsys, "is being trained by another process", run.parent)


def test_a_finished_run_is_evaluated_with_a_finite_tau(run, capsys):
    assert main(["eval", str(run), "--posthoc-tau", "0.5"]) == 0
    final = RunDir(run).final()
    assert final["posthoc"]["tau"] == 0.5 and 0 <= final["posthoc"]["top1"] <= 1
    assert "post-hoc logit adjustment, tau 0.5" in capsys.readouterr().out
