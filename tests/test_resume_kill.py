"""A run killed with SIGKILL mid-epoch and started again with the same command resumes from its
last checkpoint and ends with exactly the metrics of an uninterrupted run (on CPU)."""

import json
import os
import subprocess
import sys
import time

import torch

from lt_bench.cli import main

CONFIG = [
    "data.name=synthetic",
    "data.options={num_classes: 6, image_size: 16, train_per_class: 150, test_per_class: 10}",
    "data.ratio=3",
    "data.batch_size=16",
    "model.name=small_cnn",
    "method.name=sar",
    "optim.epochs=3",
    "optim.warmup_epochs=1",
    "train.progress=false",
    "name=run",
]


def metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["epoch"], r["loss/total"], r["train/acc"], r["sar/gate_rate"]) for r in rows]


def test_sigkill_mid_epoch_then_the_same_command_resumes_exactly(tmp_path):
    killed = tmp_path / "killed"
    command = ["train", "-", *CONFIG, f"out_dir={killed}"]
    # The same thread count as this process: float sums depend on it, and the runs must match exactly.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen(
        [sys.executable, "-m", "lt_bench", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    log = killed / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (log.exists() and log.read_text().count("\n") >= 1):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline, "the first epoch did not finish in time"
        time.sleep(0.02)
    time.sleep(0.3)  # well into the second epoch
    process.kill()
    process.wait()
    assert json.loads((killed / "run" / "final.json").read_text())["status"] == "running"
    assert main([*command, "--resume"]) == 0

    whole = tmp_path / "whole"
    assert main(["train", "-", *CONFIG, f"out_dir={whole}"]) == 0
    a = json.loads((whole / "run" / "final.json").read_text())
    b = json.loads((killed / "run" / "final.json").read_text())
    for key in ("top1", "many", "medium", "few", "balanced", "ece"):
        assert a[key] == b[key], key
    assert metrics(whole / "run") == metrics(killed / "run")
