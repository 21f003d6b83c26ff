"""The ``class_balanced`` sampler against a transcription of Decoupling's official
``data/ClassAwareSampler.py`` (facebookresearch/classifier-balancing): the same order when both
shuffle with the same random numbers, and, with our own generator, the properties that hold
whatever the random numbers: visits of 4 images of one class, every class once per cycle of
visits, no image of a class again before all its images were drawn."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lt_bench.data import samplers
from lt_bench.data.samplers import (
    SAMPLES_PER_CLASS,
    ClassAwareSampler,
    class_probabilities,
    epoch_indices,
)

LABELS = np.repeat(np.arange(5), [37, 12, 5, 3, 1])[np.random.default_rng(0).permutation(58)]


# --- The official code, transcribed: ``random`` is the module's (a random.Random); ``labels``
# stands for ``data_source.labels``; the lines are the official ones, the pdb import and the
# commented-out line dropped.
class RandomCycleIter:
    def __init__(self, data, rng, test_mode=False):
        self.data_list = list(data)
        self.length = len(self.data_list)
        self.i = self.length - 1
        self.test_mode = test_mode
        self.rng = rng

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        if self.i == self.length:
            self.i = 0
            if not self.test_mode:
                self.rng.shuffle(self.data_list)
        return self.data_list[self.i]


def class_aware_sample_generator(cls_iter, data_iter_list, n, num_samples_cls=1):
    i = 0
    j = 0
    while i < n:
        if j >= num_samples_cls:
            j = 0
        if j == 0:
            temp_tuple = next(zip(*[data_iter_list[next(cls_iter)]] * num_samples_cls))
            yield temp_tuple[j]
        else:
            yield temp_tuple[j]
        i += 1
        j += 1


class OfficialClassAwareSampler:
    def __init__(self, labels, rng, num_samples_cls=1):
        num_classes = len(np.unique(labels))
        self.class_iter = RandomCycleIter(range(num_classes), rng)
        cls_data_list = [list() for _ in range(num_classes)]
        for i, label in enumerate(labels):
            cls_data_list[label].append(i)
        self.data_iter_list = [RandomCycleIter(x, rng) for x in cls_data_list]
        self.num_samples = max([len(x) for x in cls_data_list]) * len(cls_data_list)
        self.num_samples_cls = num_samples_cls

    def __iter__(self):
        return class_aware_sample_generator(
            self.class_iter, self.data_iter_list, self.num_samples, self.num_samples_cls
        )


def official_epochs(labels, rng, epoch_sizes, num_samples_cls=SAMPLES_PER_CLASS) -> list:
    """What ``run_networks.py``'s loop takes from the official sampler: one ``iter`` an epoch,
    left when the epoch's steps are done (the DataLoader's prefetching aside)."""
    sampler = OfficialClassAwareSampler(labels, rng, num_samples_cls)
    epochs = []
    for size in epoch_sizes:
        iterator = iter(sampler)
        epochs.append([next(iterator) for _ in range(size)])
    return epochs


def shared_random_randperm(rng: random.Random):
    """``torch.randperm`` giving the permutation ``rng.shuffle`` applies to a list of that length
    (Fisher-Yates swaps do not depend on the contents), so both samplers shuffle alike."""

    def randperm(n, generator=None, **kwargs):
        order = list(range(n))
        rng.shuffle(order)
        return torch.tensor(order, dtype=torch.int64)

    return randperm


@pytest.mark.parametrize("epoch_sizes", [[64, 64, 64], [58, 58], [7, 30, 1, 61]])
def test_the_order_is_the_official_one_given_the_same_shuffles(monkeypatch, epoch_sizes):
    theirs = official_epochs(LABELS, random.Random(3), epoch_sizes)
    monkeypatch.setattr(samplers.torch, "randperm", shared_random_randperm(random.Random(3)))
    ours = ClassAwareSampler(LABELS, torch.Generator())  # one sampler for every epoch, as theirs
    assert [ours.draw(size).tolist() for size in epoch_sizes] == theirs


def visits(order: list, labels: np.ndarray, per_visit: int = SAMPLES_PER_CLASS) -> list:
    """The classes of consecutive visits; each visit must be images of one class."""
    classes = []
    for start in range(0, len(order) - per_visit + 1, per_visit):
        visited = {int(labels[i]) for i in order[start : start + per_visit]}
        assert len(visited) == 1, f"visit at {start} mixes classes {visited}"
        classes.append(visited.pop())
    return classes


def check_cycles(order: list, labels: np.ndarray) -> None:
    """Every class once in each cycle of C visits; a class's images in blocks of its size, each
    block all of its images (without replacement until used up)."""
    classes = visits(order, labels)
    num_classes = len(np.unique(labels))
    for start in range(0, len(classes) - num_classes + 1, num_classes):
        assert sorted(classes[start : start + num_classes]) == list(range(num_classes))
    for c in range(num_classes):
        members = sorted(np.flatnonzero(labels == c).tolist())
        drawn = [i for i in order if labels[i] == c]
        for start in range(0, len(drawn) - len(members) + 1, len(members)):
            assert sorted(drawn[start : start + len(members)]) == members


@pytest.mark.parametrize("seed", range(3))
def test_the_official_and_ours_share_the_properties_any_random_numbers_give(seed):
    sizes = [180, 180, 180]  # the official epoch holds at most 37 x 5 = 185 images
    theirs = sum(official_epochs(LABELS, random.Random(seed), sizes), [])
    sampler = ClassAwareSampler(LABELS, torch.Generator().manual_seed(seed))
    ours = sum((sampler.draw(size).tolist() for size in sizes), [])
    for order in (theirs, ours):
        check_cycles(order, LABELS)
        # 135 visits of 5 classes: exactly 27 visits, 108 images, of each class.
        assert np.bincount(LABELS[order], minlength=5).tolist() == [108] * 5
    # Within a class, images are drawn equally often up to one (same for both: no randomness).
    spread = [
        np.ptp(np.bincount(o, minlength=58)[LABELS == c]) for o in (theirs, ours) for c in range(5)
    ]
    assert max(spread) <= 1


def test_an_epoch_of_the_class_balanced_sampler_is_one_of_fresh_cycles():
    order = epoch_indices(LABELS, "class_balanced", torch.Generator().manual_seed(1)).tolist()
    assert len(order) == len(LABELS)
    check_cycles(order, LABELS)
    again = epoch_indices(LABELS, "class_balanced", torch.Generator().manual_seed(1)).tolist()
    assert order == again  # the generator alone fixes an epoch (a resumed run draws the same)


def test_the_iid_sampler_is_kept_under_its_own_name():
    """``class_balanced_iid`` (a departure, the old ``class_balanced``) draws with replacement:
    its visits are not cycles, yet every class is drawn about as often."""
    labels = np.repeat(np.arange(4), [400, 100, 25, 4])
    draws = epoch_indices(labels, "class_balanced_iid", torch.Generator().manual_seed(0)).numpy()
    with pytest.raises(AssertionError):
        check_cycles(draws.tolist(), labels)
    share = np.bincount(labels[draws], minlength=4) / len(draws)
    assert np.allclose(
        share, class_probabilities(np.bincount(labels), "class_balanced_iid"), atol=0.05
    )
