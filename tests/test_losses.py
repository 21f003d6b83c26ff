import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lt_bench.data.samplers import class_probabilities, epoch_indices
from lt_bench.losses import Reweighting, build_loss, class_balanced_weights

COUNTS = [100, 30, 10, 1]


def test_balanced_softmax_and_logit_adjustment_add_the_log_prior():
    logits, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 3] * 2)
    prior = torch.log(torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS))
    assert build_loss("balanced_softmax", COUNTS)(logits, y).item() == pytest.approx(
        F.cross_entropy(logits + prior, y).item()
    )
    assert build_loss("logit_adjust", COUNTS, tau=0.5)(logits, y).item() == pytest.approx(
        F.cross_entropy(logits + 0.5 * prior, y).item()
    )


def test_ldam_margins_and_scale():
    loss = build_loss("ldam", COUNTS)
    margins = torch.tensor(COUNTS, dtype=torch.float32) ** -0.25
    assert torch.allclose(loss.margins, margins * 0.5 / margins.max())
    assert loss.margins.max().item() == pytest.approx(0.5) and loss.classifier == "cosine"
    cos, y = torch.rand(4, 4) * 2 - 1, torch.tensor([0, 1, 2, 3])
    shifted = cos - torch.diag(loss.margins)
    # The cosine classifier hands the loss 30 cos; the margin is taken in the same units.
    assert loss(30 * cos, y).item() == pytest.approx(
        F.cross_entropy(30 * shifted, y).item(), rel=1e-6
    )


def test_focal_with_gamma_zero_is_cross_entropy():
    logits, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 3] * 2)
    assert build_loss("focal", COUNTS, gamma=0.0)(logits, y).item() == pytest.approx(
        F.cross_entropy(logits, y).item()
    )
    assert (
        build_loss("focal", COUNTS, gamma=2.0)(logits, y).item() < F.cross_entropy(logits, y).item()
    )


def test_class_balanced_weights_and_drw_switch():
    w = class_balanced_weights(COUNTS, beta=0.99)
    raw = (1 - 0.99) / (1 - 0.99 ** np.array(COUNTS, dtype=float))
    assert np.allclose(
        w.numpy(), raw / raw.sum() * 4, rtol=1e-6
    ) and w.sum().item() == pytest.approx(4)
    drw = Reweighting(COUNTS, "drw", cb_beta=0.99, drw_epoch=160)
    assert drw(159) is None and torch.equal(drw(160), w)
    assert Reweighting(COUNTS, "none")(500) is None and torch.equal(
        Reweighting(COUNTS, "cb", 0.99)(0), w
    )


def test_weighted_losses_reduce_as_their_references():
    """ce: sum w_y CE / sum w_y (LDAM-DRW's nn.CrossEntropyLoss(weight)), or / batch size with
    weighting=batch_mean (Cui et al.); focal with gamma 0: mean of w_y CE (LDAM-DRW's FocalLoss),
    or the weighted mean with weighting=weighted_mean. The batch is imbalanced so that the two
    reductions differ (tests/test_losses_reference.py compares each with its reference)."""
    logits, y = torch.randn(8, 4), torch.tensor([0, 0, 0, 0, 0, 1, 2, 3])
    w = class_balanced_weights(COUNTS)
    weighted_mean = F.cross_entropy(logits, y, weight=w).item()
    batch_mean = (w[y] * F.cross_entropy(logits, y, reduction="none")).mean().item()
    assert abs(weighted_mean / batch_mean - 1) > 0.1
    assert build_loss("ce", COUNTS)(logits, y, w).item() == pytest.approx(weighted_mean, rel=1e-6)
    assert build_loss("ce", COUNTS, weighting="batch_mean")(logits, y, w).item() == pytest.approx(
        batch_mean, rel=1e-6
    )
    focal = build_loss("focal", COUNTS, gamma=0.0)(logits, y, w)
    assert focal.item() == pytest.approx(batch_mean, rel=1e-6)
    focal = build_loss("focal", COUNTS, gamma=0.0, weighting="weighted_mean")(logits, y, w)
    assert focal.item() == pytest.approx(weighted_mean, rel=1e-6)


def test_sampler_class_probabilities():
    assert class_probabilities([100, 25, 0], "class_balanced").tolist() == [0.5, 0.5, 0.0]
    assert class_probabilities([100, 25], "square_root").tolist() == pytest.approx(
        [10 / 15, 5 / 15]
    )
    assert class_probabilities([100, 25], "instance").tolist() == pytest.approx([0.8, 0.2])


@pytest.mark.parametrize("kind", ["class_balanced", "square_root"])
def test_sampler_draws_follow_the_probabilities(kind):
    labels = np.repeat(np.arange(4), [400, 100, 25, 4])
    order = epoch_indices(labels, kind, torch.Generator().manual_seed(0))
    draws = np.concatenate(
        [
            labels[epoch_indices(labels, kind, torch.Generator().manual_seed(s)).numpy()]
            for s in range(20)
        ]
    )
    assert len(order) == len(labels)
    share = np.bincount(draws, minlength=4) / len(draws)
    assert np.allclose(share, class_probabilities(np.bincount(labels), kind), atol=0.02)


def test_instance_sampler_is_a_seeded_permutation():
    labels = np.repeat(np.arange(3), [5, 3, 1])
    a = epoch_indices(labels, "instance", torch.Generator().manual_seed(1))
    assert sorted(a.tolist()) == list(range(9))
    assert torch.equal(a, epoch_indices(labels, "instance", torch.Generator().manual_seed(1)))
