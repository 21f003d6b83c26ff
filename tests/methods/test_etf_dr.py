"""ETF + dot-regression against a transcription of the official code, the ETF's geometry and
seeding, the feature-dim refusal, and runs through the engine (with an exact resume)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.errors import UserError
from lt_bench.losses import DotRegression, build_loss
from lt_bench.methods import build_method
from lt_bench.methods.etf import simplex_etf
from lt_bench.methods.etf_dr import ETFDotRegression, NormalizedETFClassifier
from lt_bench.models import build_network
from lt_bench.rundir import run_path
from tests.conftest import tiny, train_whole_and_resumed

TOLERANCE = 1e-6

# ---------------------------------------------------------------- the official code, transcribed
# NeuralCollapseApplications/ImbalancedLearning at commit 2ebb309dddcd0ac8b18222fd06357099260bc169:
# models/resnet_cifar.py (ETF_Classifier: construction and forward), methods.py (dot_loss with
# criterion 'reg_dot_loss', produce_Ew) and train.py (train: the ETF_classifier + reg_dot_loss
# branch without mixup; GivenEw and reg_lam as utils/logger.py's defaults, True and 0). On the CPU
# (no .cuda()), and the random matrix drawn from a passed generator instead of global np.random.


class OfficialETFClassifier(nn.Module):
    def __init__(self, feat_in, num_classes, rng):
        super().__init__()
        basis = self.generate_random_orthogonal_matrix(feat_in, num_classes, rng)
        identity = torch.eye(num_classes)
        ones = torch.ones(num_classes, num_classes)
        self.ori_M = np.sqrt(num_classes / (num_classes - 1)) * torch.matmul(
            basis, identity - (1 / num_classes) * ones
        )  # D x K: one column per class
        self.BN_H = nn.BatchNorm1d(feat_in)

    def generate_random_orthogonal_matrix(self, feat_in, num_classes, rng):
        uniform = rng.random(size=(feat_in, num_classes))
        basis, _ = np.linalg.qr(uniform)
        basis = torch.tensor(basis).float()
        assert torch.allclose(basis.T @ basis, torch.eye(num_classes), atol=1e-7)
        return basis

    def forward(self, x):
        x = self.BN_H(x)
        return x / torch.clamp(torch.sqrt(torch.sum(x**2, dim=1, keepdims=True)), 1e-8)


def official_produce_Ew(label, num_classes):
    classes, count = torch.unique(label, return_counts=True)
    gamma = label.size(0) / classes.size(0)
    ew = torch.ones(1, num_classes)
    for i in range(classes.size(0)):
        ew[0, classes[i]] = torch.sqrt(gamma / count[i])
    return ew


def official_dot_loss(output, label, cur_M, H_length, reg_lam=0):
    target = cur_M[:, label].T  # B x D
    dot = torch.bmm(output.unsqueeze(1), target.unsqueeze(2)).view(-1)
    with torch.no_grad():
        M_length = torch.sqrt(torch.sum(target**2, dim=1, keepdims=False))
    loss = (1 / 2) * torch.mean(((dot - (M_length * H_length)) ** 2) / H_length)
    if reg_lam > 0:
        loss = loss + reg_lam * torch.mean(torch.sqrt(torch.sum(output**2, dim=1, keepdims=True)))
    return loss


def official_train_loss(features, target, classifier, num_classes, given_ew=True):
    """The loss of one training step of train.py's train (ETF classifier, DR loss, no mixup)."""
    cur_M = classifier.ori_M
    if given_ew:
        cur_M = official_produce_Ew(target, num_classes) * classifier.ori_M
    feat = classifier(features)
    with torch.no_grad():
        H_length = torch.clamp(torch.sqrt(torch.sum(feat.detach() ** 2, dim=1)), 1e-8)
    return official_dot_loss(feat, target, cur_M, H_length)


# ------------------------------------------------------------------------------ the comparisons


def paired_classifiers(num_classes: int, dim: int, seed: int):
    """The official classifier and ours on the same ETF, with the same random BatchNorm affine."""
    torch.manual_seed(seed)
    official = OfficialETFClassifier(dim, num_classes, np.random.default_rng(seed))
    with torch.no_grad():
        official.BN_H.weight.uniform_(0.5, 1.5)
        official.BN_H.bias.uniform_(-0.5, 0.5)
    ours = NormalizedETFClassifier(official.ori_M.T)
    ours.norm.load_state_dict(official.BN_H.state_dict())
    return official, ours


@pytest.mark.parametrize("given_ew", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_and_gradients_match_the_official_code(seed, given_ew):
    num_classes, dim = 5, 12
    official, ours = paired_classifiers(num_classes, dim, seed)
    generator = torch.Generator().manual_seed(seed)
    features = torch.relu(torch.randn(24, dim, generator=generator))  # post-ReLU, as pooled
    target = torch.tensor([0] * 10 + [1] * 6 + [2] * 4 + [3] * 3 + [4] * 1)
    target = target[torch.randperm(24, generator=generator)]

    theirs_x = features.clone().requires_grad_(True)
    theirs = official_train_loss(theirs_x, target, official, num_classes, given_ew)
    theirs.backward()

    ours_x = features.clone().requires_grad_(True)
    loss = DotRegression([10, 6, 4, 3, 1], batch_class_weights=given_ew)
    mine = loss(ours(ours_x), target)
    mine.backward()

    assert abs(mine.item() - theirs.item()) <= TOLERANCE
    assert torch.allclose(ours_x.grad, theirs_x.grad, rtol=0, atol=TOLERANCE)
    assert torch.allclose(ours.norm.weight.grad, official.BN_H.weight.grad, rtol=0, atol=TOLERANCE)
    assert torch.allclose(ours.norm.bias.grad, official.BN_H.bias.grad, rtol=0, atol=TOLERANCE)
    assert ours.weight.grad is None  # the ETF stays fixed
    # Both BatchNorms took the same step of running statistics.
    assert torch.allclose(ours.norm.running_mean, official.BN_H.running_mean, atol=TOLERANCE)


def test_loss_by_hand_and_class_weights_as_ce():
    logits = torch.tensor([[0.5, 0.1], [0.9, -0.2], [0.0, 0.8]])
    targets = torch.tensor([0, 0, 1])
    per_sample = 0.5 * torch.tensor([0.5**2, 0.1**2, 0.2**2])
    plain = DotRegression([2, 1], batch_class_weights=False)
    assert plain(logits, targets).item() == pytest.approx(per_sample.mean().item())
    # E_y^2 = B / (U n_y): 3 / (2 * 2) for class 0, 3 / (2 * 1) for class 1.
    balanced = DotRegression([2, 1])
    e2 = torch.tensor([0.75, 0.75, 1.5])
    assert balanced(logits, targets).item() == pytest.approx((e2 * per_sample).mean().item())
    weight = torch.tensor([1.0, 3.0])
    w = weight[targets]
    expected = (w * e2 * per_sample).sum() / w.sum()
    assert balanced(logits, targets, weight).item() == pytest.approx(expected.item())
    assert balanced(logits, targets, torch.ones(2)).item() == pytest.approx(
        balanced(logits, targets).item()
    )


@pytest.mark.parametrize("num_classes, dim", [(10, 64), (5, 5), (100, 128)])
def test_the_etf_is_a_simplex_and_seeded(num_classes, dim):
    method = ETFDotRegression(num_classes, dim, [1] * num_classes, run_seed=3)
    rows = method.fixed_classifier().weight
    assert torch.equal(rows, method.anchors) and rows.shape == (num_classes, dim)
    assert torch.allclose(rows.norm(dim=1), torch.ones(num_classes), rtol=0, atol=TOLERANCE)
    cos = rows @ rows.T
    off = cos[~torch.eye(num_classes, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1 / (num_classes - 1)), rtol=0, atol=TOLERANCE)
    # The official construction gives the same Gram matrix: the same frame up to a rotation.
    official = OfficialETFClassifier(dim, num_classes, np.random.default_rng(0)).ori_M
    assert torch.allclose(official.T @ official, cos, rtol=0, atol=TOLERANCE)
    # Deterministic: the run's seed, or method.seed; another seed, another rotation.
    again = ETFDotRegression(num_classes, dim, [1] * num_classes, run_seed=3).anchors
    assert torch.equal(again, rows)
    assert torch.equal(simplex_etf(num_classes, dim, torch.Generator().manual_seed(3)), rows)
    pinned = ETFDotRegression(num_classes, dim, [1] * num_classes, run_seed=9, seed=3).anchors
    assert torch.equal(pinned, rows) and method.info()["anchor_seed"] == 3
    other = ETFDotRegression(num_classes, dim, [1] * num_classes, run_seed=4).anchors
    assert not torch.allclose(other, rows)


def test_narrow_features_are_refused_with_the_fix():
    with pytest.raises(UserError, match=r"feature dim >= the class count \(100\).*gives 64") as err:
        build_method("etf_dr", 100, 64, [1] * 100)
    assert "model.options.widths=[32,64,128]" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    wide = build_network("resnet32_cifar", 100, widths=[32, 64, 128])
    assert wide.num_features == 128
    build_method("etf_dr", 100, wide.num_features, [1] * 100)  # the official CIFAR-100 width: fine


def test_the_classifier_normalises_in_fp32_and_only_its_batchnorm_learns():
    method = ETFDotRegression(4, 16, [1] * 4)
    classifier = method.fixed_classifier()
    features = torch.relu(torch.randn(8, 16)) * 100.0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = classifier(features.bfloat16())
    assert logits.dtype == torch.float32 and logits.abs().max() <= 1 + 1e-6
    expected = classifier.normalize(features.bfloat16().float()) @ method.anchors.T
    assert torch.allclose(logits, expected, atol=1e-6)
    trainable = {n for n, p in classifier.named_parameters() if p.requires_grad}
    assert trainable == {"norm.weight", "norm.bias"}
    # A fresh module per call: the method holds no parameter the optimizer would see twice.
    assert list(method.parameters()) == [] and method.param_groups() == []


def test_training_with_the_engines_optimizer_fits_the_etf_and_keeps_it_fixed():
    """What setup and the loop do, by hand: the method's classifier in the network, SGD over the
    network's trainable parameters, the DR loss on the logits."""
    torch.manual_seed(0)
    network = build_network("small_cnn", 4, in_chans=1)
    method = build_method("etf_dr", 4, network.num_features, [8, 4, 2, 2])
    network.classifier = method.fixed_classifier()
    loss_fn = build_loss("dot_regression", [8, 4, 2, 2])
    optimizer = torch.optim.SGD([p for p in network.parameters() if p.requires_grad], lr=0.05)
    x, y = torch.randn(16, 1, 8, 8), torch.tensor([0] * 8 + [1] * 4 + [2] * 2 + [3] * 2)
    x = x + y[:, None, None, None].float()  # separable enough to fit
    losses = []
    for _ in range(30):
        features, logits = network(x)
        loss = loss_fn(logits, y)
        method(features, logits, y, network.classifier)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert torch.equal(network.classifier.weight, method.anchors)
    assert not torch.equal(network.classifier.norm.weight, torch.ones(network.num_features))
    cosine = method.epoch_stats()["etf_dr/target_cosine"]
    assert -1 <= cosine <= 1 and method.run_summary([])[1] == []


def test_a_classifier_that_is_not_the_etf_is_warned_about():
    method = build_method("etf_dr", 3, 8, [1, 1, 1])
    features, targets = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    linear = nn.Linear(8, 3)
    assert method(features, linear(features), targets, linear) == {}
    assert method.epoch_stats() == {}
    _, warnings = method.run_summary([])
    assert len(warnings) == 1 and "in 1 of 1 training steps" in warnings[0]


# ------------------------------------------------------------------------------ through the engine

TINY = tiny(
    "data.ratio=3",
    "method.name=etf_dr",
    "loss.name=dot_regression",
    "optim.epochs=3",
    "optim.lr=0.05",
    train=24,
    test=6,
)


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_etf_dr_trains_through_the_engine_and_keeps_the_etf(tmp_path):
    cfg = load_config(None, [*TINY, f"out_dir={tmp_path}"])
    final = train(cfg)
    rows = metrics(run_path(cfg))
    assert len(rows) == 3
    assert all(math.isfinite(r["loss/base"]) and r["loss/base"] > 0 for r in rows)
    assert all(-1 <= r["etf_dr/target_cosine"] <= 1 for r in rows)
    assert rows[-1]["etf_dr/target_cosine"] > rows[0]["etf_dr/target_cosine"]
    assert final["classifier"] == {"kind": "fixed"}
    assert final["method_info"]["anchors"] == "simplex_etf"
    assert final["method_stats"]["final_target_cosine"] == rows[-1]["etf_dr/target_cosine"]
    assert not any("etf_dr" in w for w in final["warnings"])
    state = torch.load(run_path(cfg) / "checkpoint.pt", weights_only=True)
    etf = simplex_etf(4, 128, torch.Generator().manual_seed(0))
    assert torch.equal(state["network"]["classifier.weight"], etf)
    assert torch.equal(state["method"]["anchors"], etf)
    assert not torch.equal(state["network"]["classifier.norm.weight"], torch.ones(128))


def test_a_resumed_etf_dr_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    whole, resumed = train_whole_and_resumed(TINY, tmp_path)
    for key in ("top1", "balanced", "method_stats"):
        assert resumed[key] == whole[key], key
