"""Which training images an epoch visits: instance, class-balanced or square-root sampling.

- ``instance``: a shuffle of every training image;
- ``class_balanced``: the class-aware sampler of Decoupling's official code (Kang et al., ICLR
  2020; facebookresearch/classifier-balancing, ``data/ClassAwareSampler.py``), transcribed in
  :class:`ClassAwareSampler`: cycles over the classes in shuffled order and takes 4 images of each
  from that class's shuffled list, without replacement until the list is used up;
- ``class_balanced_iid``: a departure from the official sampler, kept to compare with (what
  ``class_balanced`` drew before): i.i.d. draws with replacement, each class with probability 1/C;
- ``square_root``: i.i.d. draws with replacement, class c with probability proportional to
  sqrt(n_c).

An epoch of training draws as many indices as there are training images (a second stage draws
its own number: :func:`lt_bench.stages.base.train_head`).
"""

from __future__ import annotations

import numpy as np
import torch

from lt_bench.config import SAMPLERS
from lt_bench.errors import UserError

# The official stage-2 configs' ``num_samples_cls``: consecutive images of one class per visit.
SAMPLES_PER_CLASS = 4


def class_probabilities(class_counts, kind: str) -> np.ndarray:
    """Probability that a draw lands in each class (for ``class_balanced``: the share of draws
    each class gets, exactly 1/C up to the last cycle)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if kind == "instance":
        mass = counts
    elif kind in ("class_balanced", "class_balanced_iid"):
        mass = (counts > 0).astype(np.float64)
    elif kind == "square_root":
        mass = np.sqrt(counts)
    else:
        known = dict.fromkeys([*SAMPLERS, "class_balanced_iid"])
        raise UserError(f"unknown sampler {kind!r}; choose one of: {', '.join(known)}")
    return mass / mass.sum()


class _RandomCycle:
    """The official ``RandomCycleIter``: hands out its items in order and re-shuffles them each
    time they are used up (also before the first item), with a torch generator for ``random``."""

    def __init__(self, items, generator: torch.Generator):
        self.items = [int(item) for item in items]
        self.generator = generator
        self.position = len(self.items)  # used up: the first take shuffles

    def take(self, count: int) -> list[int]:
        taken = []
        while len(taken) < count:
            if self.position == len(self.items):
                shuffle = torch.randperm(len(self.items), generator=self.generator).tolist()
                self.items = [self.items[i] for i in shuffle]
                self.position = 0
            part = self.items[self.position : self.position + count - len(taken)]
            self.position += len(part)
            taken += part
        return taken


class ClassAwareSampler:
    """The official ``ClassAwareSampler`` with ``num_samples_cls = samples_per_class``: each visit
    takes the next class of a shuffled cycle over the classes that have images, then the next
    ``samples_per_class`` images of that class's own cycle (so a class with fewer images than that
    repeats one inside a visit, as the official ``zip`` over one iterator does). Every class is
    visited once per cycle; within a class no image repeats until all its images were drawn.

    Its cycles carry over from one :meth:`draw` to the next, as the official sampler's iterators
    carry over from epoch to epoch; a draw that ends inside a visit drops the visit's remaining
    images, as the official generator does when the epoch's loop breaks (the DataLoader's
    prefetching past that break, which also advances the official cycles, is not copied)."""

    def __init__(
        self,
        labels: np.ndarray,
        generator: torch.Generator,
        samples_per_class: int = SAMPLES_PER_CLASS,
    ):
        labels = np.asarray(labels)
        by_class = np.argsort(labels, kind="stable")  # each class's images in index order
        counts = np.bincount(labels)
        members = np.split(by_class, np.cumsum(counts)[:-1])
        self.samples_per_class = samples_per_class
        self.images = [_RandomCycle(m, generator) for m in members if len(m)]
        self.classes = _RandomCycle(range(len(self.images)), generator)

    def draw(self, count: int) -> torch.Tensor:
        """The next ``count`` training indices."""
        order = []
        for _ in range(-(-count // self.samples_per_class)):  # class, then its images: the
            visited = self.classes.take(1)[0]  # official order of shuffles, one generator
            order += self.images[visited].take(self.samples_per_class)
        return torch.tensor(order[:count], dtype=torch.int64)


def iid_indices(
    labels: np.ndarray,
    kind: str,
    generator: torch.Generator,
    count: int | None = None,
    num_classes: int | None = None,
) -> torch.Tensor:
    """``count`` (default: one per image) i.i.d. draws with replacement, class c picked with the
    probability :func:`class_probabilities` gives ``kind``, an image uniformly within its class."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=num_classes or 0)
    per_class = class_probabilities(counts, kind)
    per_sample = torch.as_tensor(per_class[labels] / counts[labels], dtype=torch.float64)
    count = len(labels) if count is None else count
    return torch.multinomial(per_sample, count, replacement=True, generator=generator)


def epoch_indices(
    labels: np.ndarray, kind: str, generator: torch.Generator, num_classes: int | None = None
) -> torch.Tensor:
    """One epoch's order of training indices, as many as there are images. A ``class_balanced``
    epoch starts fresh cycles, so that each epoch's order depends on the generator alone (a resumed
    run draws the same); the official sampler would carry its cycles over between epochs."""
    labels = np.asarray(labels)
    class_probabilities(np.ones(1), kind)  # an unknown sampler is refused here
    if kind == "instance":
        return torch.randperm(len(labels), generator=generator)
    if kind == "class_balanced":
        return ClassAwareSampler(labels, generator).draw(len(labels))
    return iid_indices(labels, kind, generator, num_classes=num_classes)
