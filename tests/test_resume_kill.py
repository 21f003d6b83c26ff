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


def crashed_after_epoch_two(out_dir):
    """A run that raised after its second epoch's checkpoint: checkpoint.pt is epoch 2's and
    checkpoint.prev.pt epoch 1's."""
    from lt_bench.config import load_config
    from lt_bench.engine import train

    def crash(epoch, row):
        if epoch == 2:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        train(load_config(None, [*CONFIG, f"out_dir={out_dir}"]), on_epoch_end=crash)
    run_dir = out_dir / "run"
    assert torch.load(run_dir / "checkpoint.prev.pt", weights_only=True)["epoch"] == 1
    return run_dir


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, whole, capsys):
    run_dir = crashed_after_epoch_two(tmp_path)
    blob = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])  # torn by a full disk, a copy
    resume(run_dir)
    assert "checkpoint.pt is damaged" in capsys.readouterr().err
    assert_same_as_whole(run_dir, whole)  # epoch 2 trained again from epoch 1's state, exactly
    assert not (run_dir / "checkpoint.prev.pt").exists()  # a done run keeps its last one only


def test_damaged_checkpoints_with_nothing_to_fall_back_on_are_named(tmp_path, capsys):
    run_dir = crashed_after_epoch_two(tmp_path)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run_dir / name).write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["train", "-", *CONFIG, f"out_dir={tmp_path}", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.pt is damaged" in err
    assert "delete the run folder and rerun it" in err


def test_an_edited_split_is_refused_on_resume(tmp_path, capsys):
    run_dir = crashed_after_epoch_two(tmp_path)
    split = json.loads((run_dir / "split.json").read_text())
    split["ratio"], split["sha256"] = 50, "0" * 64
    (run_dir / "split.json").write_text(json.dumps(split))
    capsys.readouterr()
    assert main(["train", "-", *CONFIG, f"out_dir={tmp_path}", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "split.json is not the split its config draws (ratio: 50 vs 3" in err


def test_a_locked_run_is_refused_and_left_alone(tmp_path, capsys):
    from lt_bench.rundir import RunDir

    run = RunDir(tmp_path / "run")
    with run.lock():  # another process training it, as far as flock can tell
        assert main(["train", "-", *CONFIG, f"out_dir={tmp_path}"]) == 2
    assert "is being trained by another process" in capsys.readouterr().err
    assert (
        run.status() == "incomplete" and not run.checkpoint.exists()
    )  # nothing written, not failed


def test_a_failure_after_the_folder_exists_ends_failed(tmp_path):
    from lt_bench import failpoints

    failpoints.arm("raise:final_evaluation")
    try:
        assert main(["train", "-", *CONFIG, f"out_dir={tmp_path}"]) != 0
    except failpoints.FailpointError:
        pass
    finally:
        failpoints.arm(None)
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert final["status"] == "failed" and (tmp_path / "run" / "error.log").exists()
