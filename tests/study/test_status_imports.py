"""``lt-bench sweep STUDY --status`` and ``--dry-run`` read files only: no torch, no timm."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUNE = "tune: {trials: 2, space: {optim.lr: {log_uniform: [0.01, 0.2]}}}\n"
CHECK = (
    "import sys; from lt_bench.cli import main; "
    "code = main(['sweep', sys.argv[1], '--runs-dir', sys.argv[2], sys.argv[3]]); "
    "heavy = sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules); "
    "assert code == 0 and not heavy, (code, heavy)"
)


@pytest.mark.parametrize("flag", ["--status", "--dry-run"])
@pytest.mark.parametrize("tuned", [False, True], ids=["plain", "tuned"])
def test_status_and_dry_run_import_no_torch(tmp_path, flag, tuned):
    from lt_bench.rundir import RunDir
    from lt_bench.study import expand, load_study

    study = tmp_path / "study.yaml"
    base = ROOT / "experiments" / "mnist_lt.yaml"
    study.write_text(f"name: s\nbase: {base}\ngrid:\n  seed: [0, 1]\n" + (TUNE if tuned else ""))
    runs = tmp_path / "runs"
    if not tuned:  # a done run, so that its saved config is compared with the point's
        point = expand(load_study(study), runs)[0]
        RunDir(point.run_dir).write_config(point.cfg)
        RunDir(point.run_dir).write_final({"status": "done"})
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(study), str(runs), flag],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert ("1 done" if not tuned else "wait for the tuning trials (0 of 2 done)") in done.stdout
