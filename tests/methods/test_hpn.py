"""Hyperspherical prototype networks against a transcription of the official code, the
prototypes' separation and seeding, and a run through the engine (with an exact resume)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.errors import UserError
from lt_bench.methods import build_method
from lt_bench.methods.hpn import (
    HypersphericalPrototypes,
    largest_pairwise_cosine,
    max_separation_prototypes,
    separation_loss,
)
from lt_bench.models import build_network
from lt_bench.rundir import run_path
from tests.conftest import tiny, train_whole_and_resumed

# ---------------------------------------------------------------- the official code, transcribed
# psmmettes/hpn at commit 87f52052a62e1add45f588e1fde124511384901d, prototypes.py
# (prototype_loss and the "Optimize for separation" loop of __main__, without the word-vector
# option), and at commit 55ae12108db1d8246b8ef298cec51c95a16d5aa0, hpn_cifar.py (main_train's
# loss) and models/cifar/resnet.py (ResNet.predict). Ported from Python 2 (xrange -> range);
# the structure is theirs, on the CPU.


def official_prototype_loss(prototypes):
    product = torch.matmul(prototypes, prototypes.t()) + 1
    product -= 2.0 * torch.diag(torch.diag(product))
    loss = product.max(dim=1)[0]
    return loss.mean(), product.max()


def official_prototypes(classes, dims, seed, epochs, learning_rate=0.1, momentum=0.9):
    torch.manual_seed(seed)
    prototypes = torch.randn(classes, dims)
    prototypes = nn.Parameter(F.normalize(prototypes, p=2, dim=1))
    optimizer = torch.optim.SGD([prototypes], lr=learning_rate, momentum=momentum)
    for _ in range(epochs):
        loss, _ = official_prototype_loss(prototypes)
        loss.backward()
        optimizer.step()
        prototypes = nn.Parameter(F.normalize(prototypes, p=2, dim=1))
        optimizer = torch.optim.SGD([prototypes], lr=learning_rate, momentum=momentum)
    return prototypes.data


def official_training_loss(output, target, polars):
    f_loss = nn.CosineSimilarity(eps=1e-9)
    target = polars[target]
    return (1 - f_loss(output, target)).pow(2).sum()


def official_predict(x, polars):
    x = F.normalize(x, p=2, dim=1)
    return torch.mm(x, polars.t())


# ----------------------------------------------------------------------- against the transcription


def test_separation_loss_is_the_official_prototype_loss():
    prototypes = F.normalize(torch.randn(9, 5, generator=torch.Generator().manual_seed(3)), dim=1)
    ours, nearest = separation_loss(prototypes)
    official, _ = official_prototype_loss(prototypes.clone())
    assert ours.item() == pytest.approx(official.item(), abs=1e-7)
    cos = prototypes @ prototypes.T
    cos.fill_diagonal_(-2)
    assert torch.equal(nearest, cos.argmax(dim=1))


@pytest.mark.parametrize("classes, dims", [(4, 3), (10, 6), (30, 8)])
def test_prototype_optimisation_follows_the_official_loop(classes, dims):
    """One step: our written-out gradient is autograd's on the official loss (fp32, 1e-6). A few
    hundred steps: the same trajectory to 1e-4 (measured: 2e-6; the last bits of the sums differ
    in order). Over thousands of steps the two part ways, as any two fp32 runs of a max would:
    one last-bit difference flips a nearest neighbour (10,000 steps of 10 x 64: 0.04 apart), so
    the end points are compared by their separation below. The official script's momentum 0.9
    never acts (its optimiser is rebuilt after every step): it matches our momentum 0."""
    for epochs, tolerance in ((1, 1e-6), (300, 1e-4)):
        ours = max_separation_prototypes(classes, dims, seed=7, epochs=epochs)
        official = official_prototypes(classes, dims, seed=7, epochs=epochs)
        assert torch.allclose(ours, official, atol=tolerance, rtol=0), epochs
    with_buffer = max_separation_prototypes(classes, dims, seed=7, epochs=300, momentum=0.9)
    assert not torch.allclose(with_buffer, official, atol=1e-2)  # a kept buffer would differ


def test_the_training_term_and_its_gradient_are_the_official_loss():
    generator = torch.Generator().manual_seed(0)
    hpn = HypersphericalPrototypes(5, 7, [1] * 5, weight=1.0, proto_epochs=50)
    features = torch.randn(12, 7, generator=generator, dtype=torch.float32)
    targets = torch.randint(0, 5, (12,), generator=generator)

    ours_in = features.clone().requires_grad_(True)
    ours = hpn(ours_in, None, targets, None)["hpn/loss"]
    ours.backward()
    official_in = features.clone().requires_grad_(True)
    official = official_training_loss(official_in, targets, hpn.prototypes)
    official.backward()
    assert ours.item() == pytest.approx(official.item(), rel=1e-6)
    assert torch.allclose(ours_in.grad, official_in.grad, atol=1e-6, rtol=0)

    # weight scales the term; reduction=mean divides the official sum by the batch size.
    scaled = HypersphericalPrototypes(5, 7, [1] * 5, weight=0.5, reduction="mean", proto_epochs=50)
    value = scaled(features, None, targets, None)["hpn/loss"].item()
    assert value == pytest.approx(0.5 * official.item() / 12, rel=1e-6)


def test_the_fixed_classifier_predicts_the_official_nearest_prototype():
    network = build_network("small_cnn", 6, in_chans=1)
    hpn = HypersphericalPrototypes(6, network.num_features, [1] * 6, proto_epochs=200)
    network.fix_classifier(hpn.fixed_classifier())
    assert not network.classifier.weight.requires_grad
    features, logits = network(torch.randn(32, 1, 8, 8))
    official = official_predict(features, hpn.prototypes)
    assert torch.equal(logits.argmax(1), official.argmax(1))
    free = HypersphericalPrototypes(6, 16, [1] * 6, fixed_classifier=False, proto_epochs=10)
    assert free.fixed_classifier() is None and free.info()["prediction"] == "classifier"


# ------------------------------------------------------------------------------ the prototypes


@pytest.mark.parametrize("classes, dims", [(4, 3), (4, 16), (10, 9), (10, 64), (20, 32)])
def test_prototypes_are_unit_and_near_the_simplex_optimum(classes, dims):
    """K <= D + 1: no K unit vectors do better than a regular simplex, cosine -1/(K-1). Gradient
    descent on a max with the official fixed lr 0.1 ends oscillating around it: one step moves a
    prototype by about lr * 2/K, so the final largest cosine is within 0.3/K of the optimum."""
    hpn = HypersphericalPrototypes(classes, dims, [1] * classes, run_seed=1)
    rows = hpn.prototypes
    assert torch.allclose(rows.norm(dim=1), torch.ones(classes), atol=1e-6)
    optimum = -1 / (classes - 1)
    info = hpn.info()
    assert info["simplex_optimum"] == pytest.approx(optimum)
    assert info["max_pairwise_cosine"] == pytest.approx(largest_pairwise_cosine(rows))
    assert optimum - 1e-6 <= info["max_pairwise_cosine"] <= optimum + 0.3 / classes


def test_the_official_script_ends_as_separated():
    official = official_prototypes(10, 9, seed=1, epochs=10000)
    ours = HypersphericalPrototypes(10, 9, [1] * 10, run_seed=1).max_cosine
    assert largest_pairwise_cosine(official) == pytest.approx(ours, abs=0.3 / 10)


def test_more_classes_than_a_simplex_fits_still_spreads_and_records_it():
    hpn = HypersphericalPrototypes(40, 4, [1] * 40, proto_epochs=2000)
    random = F.normalize(torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    info = hpn.info()
    assert info["simplex_optimum"] is None
    assert torch.allclose(hpn.prototypes.norm(dim=1), torch.ones(40), atol=1e-6)
    assert info["max_pairwise_cosine"] < largest_pairwise_cosine(random) - 0.05


def test_prototypes_follow_the_seed():
    def rows(run_seed, **options):
        return HypersphericalPrototypes(
            6, 8, [1] * 6, run_seed=run_seed, proto_epochs=100, **options
        ).prototypes

    assert torch.equal(rows(1), rows(1))
    assert not torch.allclose(rows(1), rows(2), atol=1e-2)
    assert torch.equal(rows(2, seed=1), rows(1))  # method.seed wins over the run's
    # The draw is the official one: torch.manual_seed(seed); torch.randn(K, D).
    assert torch.allclose(rows(5), official_prototypes(6, 8, seed=5, epochs=100), atol=1e-4)


def test_prototypes_are_buffers_that_checkpoints_carry():
    hpn = HypersphericalPrototypes(4, 6, [1] * 4, proto_epochs=10)
    assert "prototypes" in hpn.state_dict() and hpn.param_groups() == []
    other = HypersphericalPrototypes(4, 6, [1] * 4, run_seed=3, proto_epochs=10)
    other.load_state_dict(hpn.state_dict())
    assert torch.equal(other.prototypes, hpn.prototypes)


def test_one_feature_dimension_is_refused():
    with pytest.raises(UserError, match="at least 2 feature dimensions"):
        HypersphericalPrototypes(3, 1, [1, 1, 1])


def test_silent_settings_are_warnings():
    hpn = HypersphericalPrototypes(4, 6, [1] * 4, weight=0.0, proto_epochs=0)
    stats, warnings = hpn.run_summary([{"epoch": 1, "hpn/cosine": 0.25}])
    assert stats == {"final_cosine": 0.25}
    assert any("weight=0" in w for w in warnings) and any("proto_epochs=0" in w for w in warnings)
    assert HypersphericalPrototypes(4, 6, [1] * 4, proto_epochs=10).run_summary([])[1] == []


# ---------------------------------------------------------------------------- through the engine

TINY = tiny("data.ratio=3", "method.name=hpn", "optim.epochs=3", "optim.lr=0.05", train=24, test=6)


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_hpn_trains_through_the_engine_and_logs_its_term(tmp_path):
    cfg = load_config(None, [*TINY, f"out_dir={tmp_path}"])
    final = train(cfg)
    rows = metrics(run_path(cfg))
    assert len(rows) == 3 and all("hpn/loss" in r and "hpn/cosine" in r for r in rows)
    assert all(r["hpn/loss"] > 0 for r in rows)
    assert rows[-1]["hpn/cosine"] > rows[0]["hpn/cosine"]  # features turn towards their prototype
    assert final["classifier"] == {"kind": "fixed"}
    info = final["method_info"]
    assert info["prediction"] == "nearest prototype" and info["prototype_seed"] == 0
    assert any("base loss" in note for note in info["departures"])
    assert final["method_stats"]["final_cosine"] == rows[-1]["hpn/cosine"]
    assert not any("hpn" in w for w in final["warnings"])
    state = torch.load(run_path(cfg) / "checkpoint.pt", weights_only=True)
    classifier = state["network"]["classifier.weight"]
    assert torch.equal(state["method"]["prototypes"], classifier)


def test_a_resumed_hpn_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    whole, resumed = train_whole_and_resumed(TINY, tmp_path)
    for key in ("top1", "many", "medium", "few", "balanced", "method_stats"):
        assert resumed[key] == whole[key], key

    def logged(root):
        return [
            (r["epoch"], r["loss/total"], r["hpn/loss"], r["hpn/cosine"])
            for r in metrics(next(root.iterdir()))
        ]

    assert logged(tmp_path / "b") == logged(tmp_path / "a")


def test_weight_zero_warns_in_the_run(tmp_path):
    cfg = load_config(None, [*TINY, "optim.epochs=1", "method.weight=0", f"out_dir={tmp_path}"])
    final = train(cfg)
    assert any("hpn: weight=0" in w for w in final["warnings"])


def test_build_method_passes_the_run_seed():
    a = build_method("hpn", 4, 8, [3, 2, 1, 1], run_seed=4, proto_epochs=20)
    b = HypersphericalPrototypes(4, 8, [3, 2, 1, 1], seed=4, proto_epochs=20)
    assert torch.equal(a.prototypes, b.prototypes) and a.info()["prototype_seed"] == 4


@pytest.mark.parametrize("method", ["none", "weight_balancing", "etf_dr"])
def test_no_base_loss_needs_a_method_with_its_own_loss(tmp_path, method):
    from lt_bench.validate import validate

    cfg = load_config(None, [*tiny(), f"method.name={method}", "loss.name=none", f"out_dir={tmp_path}"])
    with pytest.raises(UserError, match="trains nothing"):
        validate(cfg)


def test_hpn_alone_trains_with_no_base_loss(tmp_path):
    """The official recipe: the HPN loss alone (loss.name=none), nearest-prototype prediction."""
    cfg = load_config(
        None,
        [*tiny("data.ratio=3", "optim.epochs=4", "optim.lr=0.05"), "method.name=hpn",
         "method.proto_epochs=50", "loss.name=none", f"out_dir={tmp_path}"],
    )  # fmt: skip
    final = train(cfg)
    rows = [json.loads(line) for line in (run_path(cfg) / "metrics.jsonl").read_text().splitlines()]
    assert final["status"] == "done" and all(row["loss/base"] == 0 for row in rows)
    assert all(row["hpn/loss"] > 0 for row in rows)
    assert rows[-1]["hpn/cosine"] > rows[0]["hpn/cosine"]
