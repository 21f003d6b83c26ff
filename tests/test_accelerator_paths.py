"""The accelerator code paths, run on CPU: bf16 autocast, torch.compile, and the timm registration
that ``import lt_bench`` promises."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.setup import build
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parent.parent

TINY = tiny(
    "data.ratio=4",
    "method.name=center",
    "optim.epochs=2",
    "optim.lr=0.05",
    size=12,
    train=48,
    test=8,
)


def losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["loss/total"] for row in rows]


def run(tmp_path, name, *overrides):
    final = train(load_config(None, [*TINY, f"out_dir={tmp_path}", f"name={name}", *overrides]))
    return final, losses(tmp_path / name)


def test_import_registers_the_cifar_models_in_timm_without_importing_torch():
    code = (
        "import sys, lt_bench\n"
        "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'import lt_bench is heavy'\n"
        "import timm\n"
        "for name in ('resnet20_cifar', 'resnet32_cifar', 'resnet110_cifar', 'small_cnn'):\n"
        "    assert timm.is_model(name), name\n"
        "model = timm.create_model('resnet32_cifar')\n"
        "print(sum(p.numel() for p in model.parameters()), model.pretrained_cfg['mean'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    params, mean = out.stdout.split(" ", 1)
    assert int(params) == 464_154 and mean.startswith("(0.49")  # CIFAR mean, not ImageNet's


def test_timm_imported_first_then_lt_bench_registers_at_once():
    code = "import timm, lt_bench\nprint(timm.is_model('resnet56_cifar'))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


@pytest.mark.parametrize("amp, precision", [("auto", "fp32"), ("false", "fp32"), ("true", "bf16")])
def test_amp_setting_resolves_on_cpu(amp, precision):
    setup = build(load_config(None, [*TINY, f"train.amp={amp}", "train.device=cpu"]))
    assert setup.precision == precision


def test_bf16_autocast_trains_on_cpu_close_to_fp32(tmp_path):
    fp32, fp32_losses = run(tmp_path, "fp32", "train.amp=false")
    bf16, bf16_losses = run(tmp_path, "bf16", "train.amp=true")
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert fp32["compiled"] is False
    # bf16 keeps 8 bits of mantissa: the runs differ, but not by much after two epochs.
    assert bf16_losses != fp32_losses
    assert bf16_losses == pytest.approx(fp32_losses, rel=0.05)
    assert abs(bf16["top1"] - fp32["top1"]) <= 0.25


def test_compiled_training_matches_eager_on_cpu(tmp_path):
    """torch.compile (inductor) on CPU: the first compile takes 15-40 s here. Fused kernels
    reorder float sums, so the losses agree to a tolerance, not bit for bit."""
    eager, eager_losses = run(tmp_path, "eager", "train.compile=false")
    compiled, compiled_losses = run(tmp_path, "compiled", "train.compile=true")
    assert compiled["compiled"] is True and compiled["precision"] == "fp32"
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-4)  # 1e-7 seen here
    assert abs(compiled["top1"] - eager["top1"]) <= 1 / 32  # at most one test image of 32


def test_gpu_check_refuses_cleanly_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: bench/gpu_check.py would run")
    out = subprocess.run(
        [sys.executable, "bench/gpu_check.py"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("gpu_check: error: CUDA is not available")
    assert len(out.stderr.strip().splitlines()) == 1
