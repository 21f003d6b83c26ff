"""The CUDA paths of the engine, exercised and measured on a GPU machine in one run.

For the CIFAR recipe (resnet32_cifar, batch 128, in-memory CIFAR-shaped data, crop+flip, SGD) it
trains two epochs in each setting and reports the second epoch's images/s and the peak GPU memory:

- fp32 eager, bf16 eager (the default: ``train.amp=auto``), bf16 compiled (``train.compile=true``),
  all with channels_last; and SAR against none in bf16;
- with 2 or more GPUs: ``torchrun`` NCCL DDP on 2 GPUs against one process on the same global
  batch (per-epoch losses to 1e-2 relative, test top-1 to 2 images, method state in sync).

    python bench/gpu_check.py                 # about 3-6 minutes on one H100
    python bench/gpu_check.py --per-class 5000 --out gpu_check.json

On a machine without CUDA it refuses with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def config(args, out_dir: str, name: str, *extra: str) -> list[str]:
    return [
        "data.name=synthetic",
        f"data.options={{num_classes: 10, image_size: 32, train_per_class: {args.per_class}, test_per_class: 100}}",
        "data.ratio=1",
        "data.batch_size=128",
        "model.name=resnet32_cifar",
        "optim.epochs=2",
        "optim.warmup_epochs=1",
        "train.device=cuda",
        "train.progress=false",
        f"out_dir={out_dir}",
        f"name={name}",
        *extra,
    ]


def measure(args, out_dir: str, name: str, *extra: str) -> dict:
    """Train two epochs in this process; the second epoch's images/s and the peak memory."""
    from lt_bench.config import load_config
    from lt_bench.engine import train

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    started = time.time()
    final = train(load_config(None, config(args, out_dir, name, *extra)))
    rows = [json.loads(line) for line in open(Path(out_dir) / name / "metrics.jsonl")]
    return {
        "setting": name,
        "images_per_s": round(rows[-1]["images_per_s"], 1),
        "first_epoch_s": round(rows[0]["time_s"], 2),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        "precision": final["precision"],
        "compiled": final["compiled"],
        "top1": final["top1"],
        "wall_s": round(time.time() - started, 1),
    }


def ddp_parity(args, out_dir: str) -> dict:
    """NCCL DDP on 2 GPUs against one process (SAR, augmentation off so the data is identical)."""
    extra = ["method.name=sar", "data.augment=none"]
    one = measure(args, out_dir, "ddp_one", *extra)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(port), "-m", "lt_bench", "train", "-",
        *config(args, out_dir, "ddp_two", *extra),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"ok": False, "error": done.stderr.strip().splitlines()[-1:]}
    runs = Path(out_dir)
    rows = {
        n: [json.loads(line) for line in open(runs / n / "metrics.jsonl")]
        for n in ("ddp_one", "ddp_two")
    }
    two = json.loads((runs / "ddp_two" / "final.json").read_text())
    loss_gap = max(
        abs(a["loss/total"] - b["loss/total"]) / abs(a["loss/total"])
        for a, b in zip(rows["ddp_one"], rows["ddp_two"])
    )
    top1_gap_images = abs(two["top1"] - one["top1"]) * two["test_images"]
    return {
        "ok": loss_gap < 1e-2 and top1_gap_images <= 2 and two["method_state_in_sync"],
        "processes": two["processes"],
        "max_relative_loss_gap": loss_gap,
        "top1_gap_images": round(top1_gap_images, 1),
        "method_state_in_sync": two["method_state_in_sync"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=2500, help="training images per class")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "gpu_check: error: CUDA is not available on this machine; run it where "
            "torch.cuda.is_available() is true (bench/step_overhead.py measures the CPU)",
            file=sys.stderr,
        )
        return 2

    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "gpu": torch.cuda.get_device_name(0),
        "gpus": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "images_per_epoch": 10 * args.per_class,
    }
    os.environ.setdefault("OMP_NUM_THREADS", "4")
    with tempfile.TemporaryDirectory() as out_dir:
        results["runs"] = [
            measure(args, out_dir, "fp32_eager", "train.amp=false"),
            measure(args, out_dir, "bf16_eager"),
            measure(args, out_dir, "bf16_compiled", "train.compile=true"),
            measure(args, out_dir, "bf16_eager_sar", "method.name=sar"),
        ]
        if results["gpus"] >= 2:
            results["ddp"] = ddp_parity(args, out_dir)
        else:
            results["ddp"] = {"ok": None, "skipped": "one GPU: NCCL DDP parity needs 2"}

    print(
        f"{results['gpu']} x{results['gpus']}, torch {results['torch']} (CUDA {results['cuda']}), "
        f"resnet32_cifar, batch 128, {results['images_per_epoch']} images/epoch"
    )
    for run in results["runs"]:
        print(
            f"  {run['setting']:>15}: {run['images_per_s']:>9.1f} images/s, peak {run['peak_gib']:.2f} GiB, "
            f"first epoch {run['first_epoch_s']:.1f} s ({run['precision']}, compiled {run['compiled']})"
        )
    by_name = {run["setting"]: run["images_per_s"] for run in results["runs"]}
    print(
        f"  bf16 / fp32: {by_name['bf16_eager'] / by_name['fp32_eager']:.2f}x; "
        f"compiled / eager (bf16): {by_name['bf16_compiled'] / by_name['bf16_eager']:.2f}x; "
        f"sar / none step: {by_name['bf16_eager'] / by_name['bf16_eager_sar']:.2f}x"
    )
    print(f"  DDP parity: {json.dumps(results['ddp'])}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
