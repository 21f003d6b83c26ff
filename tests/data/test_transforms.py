import numpy as np
import torch
import torch.nn.functional as F

from lt_bench.data.base import DataInfo, TensorImages
from lt_bench.data.transforms import InMemoryBatches, random_crop_flip


def reference_crop_flip(images, pad, flip, generator):
    """Per-sample crops and flips drawn from the same random numbers, one image at a time."""
    batch, _, h, w = images.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator)
    mask = (
        torch.rand(batch, generator=generator) < 0.5
        if flip
        else torch.zeros(batch, dtype=torch.bool)
    )
    padded = F.pad(images, (pad,) * 4)
    out = []
    for i in range(batch):
        crop = padded[i, :, offsets[0, i] : offsets[0, i] + h, offsets[1, i] : offsets[1, i] + w]
        out.append(crop.flip(2) if mask[i] else crop)
    return torch.stack(out)


def test_batched_crop_flip_equals_per_sample_reference():
    images = torch.randint(0, 256, (16, 3, 8, 10), dtype=torch.uint8)
    got = random_crop_flip(images, 4, True, torch.Generator().manual_seed(5))
    want = reference_crop_flip(images, 4, True, torch.Generator().manual_seed(5))
    assert got.dtype == torch.uint8 and torch.equal(got, want)


def test_no_padding_no_flip_is_identity():
    images = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8)
    assert torch.equal(random_crop_flip(images, 0, False, torch.Generator()), images)


def test_in_memory_batches_normalise_and_cover_the_order():
    info = DataInfo("x", 2, (1, 2, 2), (0.5,), (0.25,))
    images = torch.full((5, 1, 2, 2), 255, dtype=torch.uint8)
    batches = InMemoryBatches(
        TensorImages(images, np.array([0, 1, 0, 1, 0]), info), 2, torch.device("cpu")
    )
    out = list(batches(torch.tensor([4, 3, 2, 1, 0])))
    assert [len(y) for _, y in out] == [2, 2, 1]
    assert torch.cat([y for _, y in out]).tolist() == [0, 1, 0, 1, 0]
    assert torch.allclose(out[0][0], torch.full((2, 1, 2, 2), (1.0 - 0.5) / 0.25))
