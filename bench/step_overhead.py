"""Step-time overheads, measured side by side in one run (ratios, not absolute times).

(a) the engine's training step over a minimal hand-written PyTorch loop doing the same work
    (resnet32_cifar, batch 128, the same batched crop+flip, SGD, schedule): target <= 1.03x;
(b) each regularizer's step over ``none`` in the engine: target <= 1.05x;
(c) the in-memory batched augmentation's images/s over torchvision's per-sample PIL DataLoader
    on the same CIFAR-shaped data: target >= 5x.

Measurements are interleaved over ``--repeats`` rounds and the median is reported, so a noisy
neighbour slows every contender alike.

    python bench/step_overhead.py               # CPU
    python bench/step_overhead.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from lt_bench.config import load_config
from lt_bench.data import build_dataset
from lt_bench.data.transforms import InMemoryBatches, random_crop_flip
from lt_bench.engine import train
from lt_bench.models import build_network
from lt_bench.setup import lr_lambda

METHODS = ["none", "sar", "center", "prototype", "etf", "hpn", "weight_balancing"]


def engine_images_per_s(method: str, args, out_dir: str) -> float:
    """Images/s of the engine's second epoch (the first pays one-off costs)."""
    cfg = load_config(
        None,
        [
            "data.name=synthetic",
            f"data.options={{num_classes: 10, image_size: 32, train_per_class: {args.per_class}, test_per_class: 2}}",
            "data.ratio=1",
            "data.batch_size=128",
            "model.name=resnet32_cifar",
            f"method.name={method}",
            "optim.epochs=2",
            "optim.warmup_epochs=1",
            f"train.device={args.device}",
            # The hand-written loop's threads: a run's default (train.threads=1) would compare
            # one thread against all of them.
            f"train.threads={torch.get_num_threads()}",
            "train.progress=false",
            f"out_dir={out_dir}",
            f"name={method}_{time.time_ns()}",
        ],
    )
    train(cfg)
    rows = [json.loads(line) for line in open(f"{out_dir}/{cfg.name}/metrics.jsonl")]
    return rows[-1]["images_per_s"]


def hand_written_images_per_s(args) -> float:
    """The same work as the engine's step, written as plainly as possible."""
    device = torch.device(args.device)
    data = build_dataset(
        "synthetic", num_classes=10, image_size=32, train_per_class=args.per_class
    ).load("train")
    images, labels = data.images.to(device), torch.as_tensor(data.labels, device=device)
    mean = torch.tensor(data.info.mean, device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(data.info.std, device=device).view(1, -1, 1, 1) * 255
    torch.manual_seed(0)
    model = build_network("resnet32_cifar", 10).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    steps = (len(labels) + 127) // 128
    cfg = load_config(None, ["optim.epochs=2", "optim.warmup_epochs=1"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.optim, steps))
    generator = torch.Generator().manual_seed(0)
    amp = device.type == "cuda"
    rate = 0.0
    for _ in range(2):
        start = time.time()
        order = torch.randperm(len(labels), generator=generator).to(device)
        model.train()
        for i in range(0, len(order), 128):
            index = order[i : i + 128]
            x = random_crop_flip(images[index], 4, True, generator)
            x = ((x.float() - mean) / std).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                _, logits = model(x)
                loss = F.cross_entropy(logits.float(), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        loss.item()  # wait for the device, as the engine's epoch end does
        rate = len(labels) / (time.time() - start)
    return rate


def augmentation_images_per_s(args) -> tuple[float, float]:
    """(batched in-memory path, torchvision per-sample PIL DataLoader) images/s, no model."""
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    data = build_dataset(
        "synthetic", num_classes=10, image_size=32, train_per_class=args.per_class
    ).load("train")
    device = torch.device(args.device)
    batches = InMemoryBatches(data, 128, device, augment="crop_flip", pad=4)
    generator = torch.Generator().manual_seed(0)
    start = time.time()
    for x, _ in batches(torch.randperm(len(data), generator=generator), generator):
        last = x
    float(last.sum())
    batched = len(data) / (time.time() - start)

    hwc = data.images.permute(0, 2, 3, 1).numpy()
    transform = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(data.info.mean, data.info.std),
        ]
    )

    class PILImages(Dataset):
        def __len__(self):
            return len(hwc)

        def __getitem__(self, i):
            return transform(Image.fromarray(hwc[i])), int(data.labels[i])

    loader = DataLoader(PILImages(), batch_size=128, shuffle=True, num_workers=args.workers)
    start = time.time()
    for x, _ in loader:
        x = x.to(device)
    float(x.sum())
    per_sample = len(data) / (time.time() - start)
    return batched, per_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-class", type=int, default=256, help="images per class (10 classes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers of the PIL baseline"
    )
    args = parser.parse_args()

    rates: dict[str, list[float]] = {k: [] for k in ["hand", *METHODS, "aug_batched", "aug_pil"]}
    with tempfile.TemporaryDirectory() as out_dir:
        for _ in range(args.repeats):
            rates["hand"].append(hand_written_images_per_s(args))
            for method in METHODS:
                rates[method].append(engine_images_per_s(method, args, out_dir))
            batched, pil = augmentation_images_per_s(args)
            rates["aug_batched"].append(batched)
            rates["aug_pil"].append(pil)
    median = {k: statistics.median(v) for k, v in rates.items()}

    print(
        f"device {args.device}, resnet32_cifar, batch 128, {10 * args.per_class} images/epoch, "
        f"median of {args.repeats} interleaved rounds, torch {torch.__version__}"
    )
    print(
        f"(a) engine step / hand-written step: {median['hand'] / median['none']:.3f}x   (target <= 1.03)"
    )
    for method in METHODS[1:]:
        print(
            f"(b) {method:>9} step / none step:     {median['none'] / median[method]:.3f}x   (target <= 1.05)"
        )
    print(
        f"(c) batched augmentation / PIL DataLoader ({args.workers} workers): "
        f"{median['aug_batched'] / median['aug_pil']:.1f}x   (target >= 5)"
    )
    print("images/s:", json.dumps({k: round(v, 1) for k, v in median.items()}))


if __name__ == "__main__":
    main()
