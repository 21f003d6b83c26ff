"""Batches for training and evaluation.

In-memory data (CIFAR, MNIST, digits, synthetic): uint8 tensors live on the training device and
augmentation (random crop with zero padding, horizontal flip) runs on whole batches there, with
no per-sample PIL work. Image folders: timm's transforms with DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lt_bench.config import AUGMENTATIONS
from lt_bench.data.base import ImageFiles, LabelledImages, TensorImages
from lt_bench.errors import UserError


def random_crop_flip(
    images: torch.Tensor, pad: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Per-image random crop of the zero-padded batch (same size back) and random horizontal flip.

    Random numbers come from a CPU generator, so CPU and GPU runs draw the same augmentations.
    """
    batch, _, height, width = images.shape
    device = images.device
    if pad > 0:
        padded = F.pad(images, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator).to(device)
        rows = offsets[0, :, None] + torch.arange(height, device=device)
        cols = offsets[1, :, None] + torch.arange(width, device=device)
        index = torch.arange(batch, device=device)[:, None, None]
        images = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(
            0, 3, 1, 2
        )
    if flip:
        mask = (torch.rand(batch, generator=generator) < 0.5).to(device)
        images = torch.where(mask[:, None, None, None], images.flip(3), images)
    return images


class InMemoryBatches:
    """Normalised float batches from uint8 images held on ``device``."""

    def __init__(
        self,
        data: TensorImages,
        batch_size: int,
        device: torch.device,
        augment: str = "none",
        pad: int = 4,
        channels_last: bool = False,
    ):
        if augment not in AUGMENTATIONS:
            raise UserError(
                f"unknown augmentation {augment!r}; choose one of: {', '.join(AUGMENTATIONS)}"
            )
        self.images = data.images.to(device)
        self.labels = torch.as_tensor(data.labels, device=device)
        self.batch_size, self.augment, self.pad = batch_size, augment, pad
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        info = data.info
        self.mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(info.std, device=device).view(1, -1, 1, 1) * 255

    def __call__(
        self, order: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.arange(len(self.labels)) if order is None else order
        order = order.to(self.images.device)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augment != "none" and generator is not None:
                images = random_crop_flip(images, self.pad, self.augment == "crop_flip", generator)
            x = (images.float() - self.mean) / self.std
            yield x.contiguous(memory_format=self.memory_format), self.labels[index]


class FileBatches:
    """Batches from image files through timm's transforms and DataLoader workers."""

    def __init__(
        self,
        data: ImageFiles,
        batch_size: int,
        device: torch.device,
        augment: str = "none",
        num_workers: int = 4,
        channels_last: bool = False,
    ):
        from timm.data import create_transform

        info = data.info
        transform = create_transform(
            info.image_size, is_training=augment != "none", mean=info.mean, std=info.std
        )
        self.data = ImageFiles(data.root, data.samples, info, transform)
        self.batch_size, self.device, self.num_workers = batch_size, device, num_workers
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, order: torch.Tensor | None = None, generator: torch.Generator | None = None):
        sampler = range(len(self.data)) if order is None else order.tolist()
        loader = DataLoader(
            self.data,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
        )
        for x, y in loader:
            x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            yield x, y.to(self.device, non_blocking=True)


def make_batches(
    data: LabelledImages,
    batch_size: int,
    device: torch.device,
    augment: str = "none",
    pad: int = 4,
    num_workers: int = 4,
    channels_last: bool = False,
):
    if isinstance(data, TensorImages):
        return InMemoryBatches(data, batch_size, device, augment, pad, channels_last)
    return FileBatches(data, batch_size, device, augment, num_workers, channels_last)
