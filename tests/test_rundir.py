"""The run directory module: status from the folder, defensive reads, same-config check, no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lt_bench.config import load_config
from lt_bench.errors import UserError
from lt_bench.rundir import FINAL, METRICS, RunDir, run_path


def test_status_of_every_state(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.status() == "pending" and run.final() == {}
    run.path.mkdir()
    assert run.status() == "incomplete"
    run.mark_running("abc")
    assert run.status() == "incomplete" and run.final()["run_id"] == "abc"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        run.mark_failed("RuntimeError: boom", "abc")
    assert run.status() == "failed" and run.error() == "RuntimeError: boom"
    assert "boom" in (run / "error.log").read_text()
    run.write_final({"status": "done", "top1": 0.5})
    assert run.is_done() and run.update_final(tuned={"a": 1})["top1"] == 0.5


def test_damaged_files_are_named_not_a_traceback(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / FINAL).write_text('{"status": "do')
    assert run.status() == "incomplete"  # resumable, never taken as done
    with pytest.raises(UserError, match=f"{FINAL} is damaged"):
        run.final()
    (tmp_path / METRICS).write_text('{"epoch": 1}\n{"epo\n')
    with pytest.raises(UserError, match=f"{METRICS} line 2 is damaged"):
        run.metrics()


def test_config_differences_ignore_keys_that_do_not_change_results(tmp_path):
    cfg = load_config(None, [f"out_dir={tmp_path}"])
    run = RunDir(run_path(cfg))
    run.write_config(cfg)
    moved = load_config(None, [f"out_dir={tmp_path / 'elsewhere'}", "train.progress=false"])
    assert run.config_differences(moved) == []
    changed = load_config(None, [f"out_dir={tmp_path}", "optim.lr=0.05"])
    assert run.config_differences(changed) == ["optim.lr: 0.1 -> 0.05"]
    with pytest.raises(UserError, match=r"its config differs \(optim.lr: 0.1 -> 0.05\)"):
        run.check_same_config(changed)


def test_rundir_and_config_import_no_torch():
    code = "import sys, lt_bench.rundir, lt_bench.config, lt_bench.validate; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
