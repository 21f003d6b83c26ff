"""SAR, rule by rule, on small hand-checked examples (see lt_bench/methods/sar.py)."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_bench.methods.sar import SAR, anchor_weights


def test_anchor_weights_filter_and_normalise():
    prob = torch.tensor([0.5, 0.95, 0.25])
    w = anchor_weights(prob, filter_conf=0.9)
    # p = [0.5, 1, 0.25] -> log p = [-ln2, 0, -2 ln2], sum -3 ln2 -> w = [1/3, 0, 2/3]
    assert w.tolist() == pytest.approx([1 / 3, 0.0, 2 / 3], abs=1e-6)
    assert anchor_weights(torch.tensor([0.95, 0.99]), 0.9).tolist() == [
        0.0,
        0.0,
    ]  # all filtered: no NaN


def make_sar(anchors, **kwargs):
    sar = SAR(
        num_classes=anchors.shape[0],
        feat_dim=anchors.shape[1],
        class_counts=[1] * anchors.shape[0],
        **kwargs,
    )
    state = {"anchors": anchors}
    sar.semantic_anchors = lambda: state["anchors"]  # the projector is tested on its own below
    return sar, state


def linear_classifier(weight, bias=None):
    classifier = nn.Linear(weight.shape[1], weight.shape[0])
    classifier.weight.data.copy_(weight)
    classifier.bias.data.copy_(bias if bias is not None else torch.zeros(weight.shape[0]))
    return classifier


def test_anchor_ce_term_matches_hand_computation():
    anchors = torch.eye(3)
    classifier = linear_classifier(torch.tensor([[2.0, 0, 0], [0, 1.0, 0], [0, 0, 0.5]]))
    sar, _ = make_sar(anchors, trade_off_ce=0.7)
    terms = sar(torch.zeros(2, 3), None, torch.tensor([0, 1]), classifier)
    logits = classifier(anchors)
    ce = F.cross_entropy(logits, torch.arange(3), reduction="none")
    p = torch.softmax(logits, 1).diagonal()
    p = torch.where(p > 0.9, torch.ones_like(p), p)
    w = torch.log(p) / (torch.log(p).sum() + 1e-9)
    assert terms["sar/anchor_ce"].item() == pytest.approx(0.7 * (w * ce).sum().item(), rel=1e-6)


def confident_classifier(anchors, scale=10.0):
    return linear_classifier(scale * anchors)  # anchor k scores scale * |a_k|^2 on its own class


def test_gate_closed_no_pull_no_ema_update():
    anchors = torch.eye(3)
    classifier = linear_classifier(
        torch.tensor([[0, 1.0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    )  # anchor 0 -> class 1
    sar, _ = make_sar(anchors)
    features = torch.randn(4, 3, requires_grad=True)
    terms = sar(features, None, torch.tensor([0, 1, 2, 0]), classifier)
    assert terms["sar/pull"].item() == 0.0
    assert not sar.initialised and torch.count_nonzero(sar.ema_anchors) == 0
    terms["sar/pull"].backward()
    assert torch.count_nonzero(features.grad) == 0


def test_gate_needs_every_probability_above_update_conf():
    anchors = torch.eye(3)
    # All argmax-correct, but anchor 2's probability e^1 / (e^1 + 2) = 0.576 < 0.8.
    classifier = linear_classifier(torch.diag(torch.tensor([10.0, 10.0, 1.0])))
    sar, _ = make_sar(anchors)
    sar(torch.randn(2, 3), None, torch.tensor([0, 1]), classifier)
    assert not sar.initialised
    sar.update_conf = 0.5  # now every p_k > 0.5: the gate holds
    sar(torch.randn(2, 3), None, torch.tensor([0, 1]), classifier)
    assert sar.initialised


def test_first_gated_step_copies_then_ema_updates():
    a1 = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    a2 = torch.tensor([[2.0, 0, 0], [0, 3.0, 0], [0, 0, 4.0]])
    sar, state = make_sar(a1)
    sar(torch.randn(2, 3), None, torch.tensor([0, 1]), confident_classifier(a1))
    assert sar.initialised and torch.equal(sar.ema_anchors, a1)
    state["anchors"] = a2
    sar(torch.randn(2, 3), None, torch.tensor([0, 1]), confident_classifier(a1))
    assert torch.allclose(sar.ema_anchors, 0.999 * a1 + 0.001 * a2, atol=1e-7)
    # A closed gate afterwards leaves the EMA anchors alone.
    before = sar.ema_anchors.clone()
    state["anchors"] = torch.tensor([[0, 1.0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    sar(torch.randn(2, 3), None, torch.tensor([0, 1]), confident_classifier(a1))
    assert torch.equal(sar.ema_anchors, before)


def test_pull_is_trade_off_times_mse_to_updated_ema_without_gradient_into_anchors():
    anchors = (2 * torch.eye(3)).requires_grad_(True)
    sar, _ = make_sar(anchors, trade_off=0.3)
    features = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 5.0]], requires_grad=True)
    targets = torch.tensor([0, 1, 2])
    terms = sar(features, None, targets, confident_classifier(anchors.detach()))
    expected = 0.3 * ((features.detach() - 2 * torch.eye(3)) ** 2).mean()
    assert terms["sar/pull"].item() == pytest.approx(expected.item())
    terms["sar/pull"].backward()
    assert anchors.grad is None  # the pull sees detached EMA anchors only
    assert not sar.ema_anchors.requires_grad
    assert torch.allclose(features.grad, 0.3 * 2 * (features.detach() - 2 * torch.eye(3)) / 9)


@pytest.mark.parametrize("detach", [False, True])
def test_classifier_gradient_on_or_off(detach):
    torch.manual_seed(0)
    sar = SAR(num_classes=4, feat_dim=8, class_counts=[1] * 4, detach_classifier=detach)
    classifier = nn.Linear(8, 4)
    terms = sar(torch.randn(4, 8), None, torch.tensor([0, 1, 2, 3]), classifier)
    terms["sar/anchor_ce"].backward()
    has_grad = classifier.weight.grad is not None and bool(classifier.weight.grad.abs().sum() > 0)
    assert has_grad is (not detach)
    assert sar.projector[0].weight.grad.abs().sum() > 0  # the projector always learns


def test_projector_matches_official_layout_and_anchors_are_fixed_buffers():
    sar = SAR(num_classes=5, feat_dim=6, class_counts=[1] * 5, seed=3)
    kinds = [type(m).__name__ for m in sar.projector]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 3
    assert sar.projector[6].bias is None  # the official 1x1 ConvModule has a norm, hence no bias
    assert "random_anchors" in dict(sar.named_buffers()) and "ema_anchors" in dict(
        sar.named_buffers()
    )
    assert all("anchors" not in name for name, _ in sar.named_parameters())
    again = SAR(num_classes=5, feat_dim=6, class_counts=[1] * 5, seed=3)
    assert torch.equal(sar.random_anchors, again.random_anchors)
    assert torch.equal(
        sar.random_anchors, torch.randn(5, 6, generator=torch.Generator().manual_seed(3))
    )


def test_gate_statistics_are_logged_per_epoch():
    a = torch.eye(3)
    sar, state = make_sar(a)
    sar(torch.randn(2, 3), None, torch.tensor([0, 1]), confident_classifier(a))
    state["anchors"] = torch.tensor([[0, 1.0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    sar(torch.randn(2, 3), None, torch.tensor([0, 1]), confident_classifier(a))
    stats = sar.epoch_stats()
    assert stats["sar/gate_rate"] == 0.5 and stats["sar/gate_ever"] is True
    assert stats["sar/anchor_acc"] == pytest.approx(2 / 3)
    assert sar.epoch_stats()["sar/gate_rate"] == 0.0  # reset after reading
