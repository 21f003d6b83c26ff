import pytest
import torch
import torch.nn as nn

from lt_bench.losses import LOSSES, build_loss
from lt_bench.methods import METHODS, build_method
from lt_bench.methods.center import CenterLoss
from lt_bench.methods.etf import ETFAnchors, max_pairwise_cosine
from lt_bench.methods.prototype import MomentumPrototypes
from lt_bench.models import build_network


def test_center_loss_value_and_paper_update_rule():
    center = CenterLoss(3, 2, [1, 1, 1], weight=0.01, alpha=0.5)
    center.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    features = torch.tensor([[2.0, 0.0], [4.0, 0.0], [1.0, 3.0]])
    targets = torch.tensor([0, 0, 1])
    loss = center(features, None, targets, None)["center/pull"]
    # 0.01 * 1/2 * mean(||f - c||^2) = 0.005 * (4 + 16 + 4) / 3
    assert loss.item() == pytest.approx(0.005 * 24 / 3)
    # class 0: delta = ((0 - 2) + (0 - 4)) / (1 + 2) = -2 -> c0 = 0 - 0.5 * (-2) = 1 (x only)
    # class 1: delta = ((1 - 1), (1 - 3)) / 2 = (0, -1) -> c1 = (1, 1.5); class 2 untouched
    assert center.centers.tolist() == [[1.0, 0.0], [1.0, 1.5], [5.0, 5.0]]


def test_center_loss_centres_are_not_optimizer_parameters():
    center = CenterLoss(3, 2, [1, 1, 1])
    assert list(center.parameters()) == [] and center.param_groups() == []


def test_prototypes_initialise_then_momentum_average_and_pull_like_sar():
    proto = MomentumPrototypes(2, 2, [1, 1], weight=0.5, momentum=0.9)
    f1 = torch.tensor([[1.0, 1.0], [3.0, 1.0]])
    proto(f1, None, torch.tensor([0, 0]), None)
    assert proto.prototypes.tolist() == [[2.0, 1.0], [0.0, 0.0]] and proto.seen.tolist() == [
        True,
        False,
    ]
    f2 = torch.tensor([[4.0, 1.0], [0.0, 2.0]], requires_grad=True)
    terms = proto(f2, None, torch.tensor([0, 1]), None)
    p0 = [0.9 * 2.0 + 0.1 * 4.0, 1.0]
    assert proto.prototypes.tolist() == [pytest.approx(p0), [0.0, 2.0]]
    expected = 0.5 * ((4.0 - p0[0]) ** 2 + 0 + 0 + 0) / 4
    assert terms["prototype/pull"].item() == pytest.approx(expected)
    assert "prototype/inter" not in terms


def test_prototype_inter_class_term_pushes_apart():
    proto = MomentumPrototypes(2, 2, [1, 1], inter_weight=1.0)
    features = torch.tensor([[1.0, 0.1], [1.0, 0.0]], requires_grad=True)
    terms = proto(features, None, torch.tensor([0, 1]), None)
    assert terms["prototype/inter"].item() > 0.9
    terms["prototype/inter"].backward()
    assert features.grad.abs().sum() > 0


@pytest.mark.parametrize("num_classes, dim", [(10, 64), (5, 5), (4, 16)])
def test_simplex_etf_cosines(num_classes, dim):
    etf = ETFAnchors(num_classes, dim, [1] * num_classes)
    rows = etf.anchors
    assert torch.allclose(rows.norm(dim=1), torch.ones(num_classes), atol=1e-5)
    cos = rows @ rows.T
    off = cos[~torch.eye(num_classes, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1 / (num_classes - 1)), atol=1e-5)
    assert etf.info()["anchors"] == "simplex_etf"


def test_spread_anchors_when_dim_below_classes():
    etf = ETFAnchors(100, 64, [1] * 100, steps=200)  # max cosine 0.06 against 0.24
    random = torch.randn(100, 64, generator=torch.Generator().manual_seed(0))
    assert etf.info()["anchors"] == "spread_logsumexp"
    assert torch.allclose(etf.anchors.norm(dim=1), torch.ones(100), atol=1e-5)
    assert etf.max_cosine < 0.5 * max_pairwise_cosine(random)
    assert etf.info()["max_pairwise_cosine"] == pytest.approx(max_pairwise_cosine(etf.anchors))


def test_etf_pull_is_cosine_distance_and_fixed_classifier():
    network = build_network("small_cnn", 3, in_chans=1)
    etf = ETFAnchors(3, network.num_features, [1, 1, 1], weight=2.0, fixed_classifier=True)
    features = etf.anchors[[0, 1]] * 3.0
    assert etf(features, None, torch.tensor([0, 1]), None)["etf/pull"].item() == pytest.approx(
        0.0, abs=1e-6
    )
    assert etf(-features, None, torch.tensor([0, 1]), None)["etf/pull"].item() == pytest.approx(4.0)
    network.fix_classifier(etf.fixed_classifier())
    assert (
        torch.equal(network.classifier.weight, etf.anchors)
        and not network.classifier.weight.requires_grad
    )


@pytest.mark.parametrize("method", METHODS.names())
@pytest.mark.parametrize("loss", LOSSES.names())
def test_every_method_and_loss_gives_finite_terms_and_backbone_gradients(method, loss):
    if loss == "none" and not METHODS.get(method).adds_loss:
        pytest.skip("nothing to train: validate refuses it (tests/methods/test_hpn.py)")
    torch.manual_seed(0)
    counts = [40, 20, 10, 5]
    base = build_loss(loss, counts)
    network = build_network("small_cnn", 4, in_chans=1, classifier=base.classifier)
    reg = build_method(method, 4, network.num_features, counts)
    x, y = torch.randn(16, 1, 8, 8), torch.tensor([0, 1, 2, 3] * 4)
    for _ in range(2):  # a second step sees initialised state (centres, prototypes)
        features, logits = network(x)
        terms = {"base": base(logits, y), **reg(features, logits, y, network.classifier)}
        total = sum(terms.values())
        assert all(torch.isfinite(v) for v in terms.values())
        network.zero_grad()
        total.backward()
    grad = network.backbone.features[0].weight.grad
    if loss == "none":  # the method's terms alone: SAR's pull waits for its gate, its anchors
        # train the classifier only; every gradient is finite and something is trained
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
        return
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_unknown_method_option_is_refused_with_suggestion():
    from lt_bench.config import load_config
    from lt_bench.errors import UserError
    from lt_bench.validate import validate

    with pytest.raises(
        UserError, match="method sar has no option 'tradeoff'; did you mean trade_off"
    ):
        validate(load_config(None, ["method.name=sar", "method.tradeoff=0.2"]))


def test_network_returns_features_and_logits():
    network = build_network("resnet20_cifar", 7)
    features, logits = network(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 64) and logits.shape == (2, 7)
    assert isinstance(network.classifier, nn.Linear)
