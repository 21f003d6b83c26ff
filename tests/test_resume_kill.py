"""A run SIGKILLed at a known point (a failpoint, never a timer) and started again with
``--resume`` ends with exactly the metrics of an uninterrupted run (on CPU): mid-epoch, during
the checkpoint write (the old checkpoint survives, never a torn one) and during the final
evaluation."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from lt_bench.cli import main
from tests.conftest import tiny

CONFIG = tiny(
    "data.ratio=3",
    "method.name=sar",
    "optim.epochs=3",
    "optim.warmup_epochs=1",
    "name=run",
    classes=6,
    size=16,
    train=150,
    test=10,
)


def metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["epoch"], r["loss/total"], r["train/acc"], r["sar/gate_rate"]) for r in rows]


def killed_run(out_dir, failpoint: str):
    """Start the run in a child process that SIGKILLs itself at ``failpoint``; return its folder."""
    # The same thread count as this process: float sums depend on it, and the runs must match exactly.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        "LT_BENCH_FAILPOINT": failpoint,
    }
    child = subprocess.run(
        [sys.executable, "-m", "lt_bench", "train", "-", *CONFIG, f"out_dir={out_dir}"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    run_dir = out_dir / "run"
    assert json.loads((run_dir / "final.json").read_text())["status"] == "running"
    return run_dir


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    assert main(["train", "-", *CONFIG, f"out_dir={out}"]) == 0
    return out / "run"


def assert_same_as_whole(run_dir, whole):
    a = json.loads((whole / "final.json").read_text())
    b = json.loads((run_dir / "final.json").read_text())
    for key in ("top1", "top5", "many", "medium", "few", "balanced", "ece", "status"):
        assert a[key] == b[key], key
    for name in ("per_class.csv", "separability.json"):
        assert (run_dir / name).read_text() == (whole / name).read_text(), name
    assert metrics(whole) == metrics(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in whole.iterdir())


def resume(run_dir):
    assert main(["train", "-", *CONFIG, f"out_dir={run_dir.parent}", "--resume"]) == 0


def test_kill_mid_epoch_then_resume_is_exact(tmp_path, whole):
    run_dir = killed_run(tmp_path, "kill:train_step:epoch=2:step=3")
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert len(metrics(run_dir)) == 1
    resume(run_dir)
    assert_same_as_whole(run_dir, whole)


def test_kill_during_the_checkpoint_write_keeps_the_old_checkpoint(tmp_path, whole):
    run_dir = killed_run(tmp_path, "kill:checkpoint_write:epoch=2")
    # The new checkpoint was fully written to a temporary file but never renamed into place:
    # checkpoint.pt is still epoch 1's, whole and loadable.
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert [p.name for p in run_dir.glob(".checkpoint.pt.*.tmp")], "expected the unpublished file"
    assert len(metrics(run_dir)) == 2  # metrics.jsonl is written before the checkpoint
    resume(run_dir)
    assert not list(run_dir.glob(".*.tmp"))  # resume clears what the kill left behind
    assert_same_as_whole(run_dir, whole)


def test_kill_during_the_final_evaluation_then_resume_evaluates_again(tmp_path, whole):
    run_dir = killed_run(tmp_path, "kill:final_evaluation")
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 3
    resume(run_dir)
    assert_same_as_whole(run_dir, whole)


def test_the_short_form_names_a_training_step(tmp_path):
    from lt_bench.failpoints import parse

    assert parse("kill:epoch=2:step=3") == ("kill", "train_step", {"epoch": "2", "step": "3"})
    assert parse("raise:final_evaluation") == ("raise", "final_evaluation", {})
    for bad in ("explode:train_step", "kill:nowhere", "kill"):
        with pytest.raises(ValueError, match="is not ACTION:POINT"):
            parse(bad)


def test_a_crash_mid_run_ends_failed_and_resume_finishes(tmp_path, whole):
    """In process: a raise failpoint, as any exception in the loop would. The run ends failed,
    with its error and traceback, never "running"; --resume continues from its last checkpoint."""
    from lt_bench import failpoints

    failpoints.arm("raise:train_step:epoch=3:step=1")
    try:
        with pytest.raises(failpoints.FailpointError):
            main(["train", "-", *CONFIG, f"out_dir={tmp_path}"])
    finally:
        failpoints.arm(None)
    run_dir = tmp_path / "run"
    final = json.loads((run_dir / "final.json").read_text())
    assert final["status"] == "failed" and "FailpointError" in final["error"]
    assert "FailpointError" in (run_dir / "error.log").read_text()
    resume(run_dir)
    assert_same_as_whole(run_dir, whole)
