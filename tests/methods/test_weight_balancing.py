"""Weight balancing's MaxNorm: the projection against a transcription of the official one, and the
engine applying it (every step or every epoch), logging it, resuming it and warning when it never
bound."""

from __future__ import annotations

import json
import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.errors import UserError
from lt_bench.methods import StepContext, build_method
from lt_bench.methods.weight_balancing import WeightBalancing
from lt_bench.models import build_network
from tests.conftest import tiny


class OfficialMaxNorm:
    """A transcription of ``MaxNorm_via_PGD`` (ShadeAlsha/LTR-weight-balancing,
    ``utils/regularizers.py`` at commit 11f438ae31b55b46052cf0048a52cde228b827eb) for a classifier
    given as its weight and bias instead of ``model.encoder.fc``: per-tensor thresholds fixed once
    (``setPerLayerThresh``: the weight's is min + thresh * (max - min) of its row norms, the bias's
    is infinite), then each row whose norm^tau exceeds it is scaled by thresh / (norm^tau)^tau."""

    def __init__(self, thresh=1.0, lp_norm=2, tau=1):
        self.thresh, self.lp_norm, self.tau = thresh, lp_norm, tau
        self.per_layer_thresh = []

    def set_per_layer_thresh(self, layers):
        self.per_layer_thresh = []
        for param in layers:
            if len(param.shape) <= 1:
                self.per_layer_thresh.append(float("inf"))
                continue
            vec = param.reshape((param.shape[0], -1))
            norms = torch.linalg.norm(vec, ord=self.lp_norm, dim=1).unsqueeze(-1)
            self.per_layer_thresh.append(norms.min() + self.thresh * (norms.max() - norms.min()))

    @torch.no_grad()
    def pgd(self, layers):
        if not self.per_layer_thresh:
            self.set_per_layer_thresh(layers)
        for i, param in enumerate(layers):
            vec = param.reshape((param.shape[0], -1))
            norms = (torch.linalg.norm(vec, ord=self.lp_norm, dim=1) ** self.tau).unsqueeze(-1)
            scaling = torch.ones_like(param)
            thresh = self.per_layer_thresh[i]
            idx = (norms > thresh).squeeze()
            factor = thresh / (norms[idx].squeeze()) ** self.tau
            for _ in range(len(scaling.shape) - 1):
                factor = factor.unsqueeze(-1)
            scaling[idx] = scaling[idx] * factor
            param[idx] = scaling[idx] * param[idx]


def spread_classifier(num_classes=10, dim=16, seed=0) -> nn.Linear:
    """A linear classifier whose class norms spread over a decade, like a long-tailed one's."""
    generator = torch.Generator().manual_seed(seed)
    classifier = nn.Linear(dim, num_classes)
    with torch.no_grad():
        rows = torch.randn(num_classes, dim, generator=generator)
        classifier.weight.copy_(rows * torch.logspace(0, -1, num_classes)[:, None])
        classifier.bias.copy_(torch.randn(num_classes, generator=generator) * 5)
    return classifier


def method(**options) -> WeightBalancing:
    return build_method("weight_balancing", 10, 16, [1] * 10, **options)


def start(wb: WeightBalancing, classifier: nn.Linear) -> None:
    """A training forward: fixes the radius from the classifier's weights, as the first step does."""
    wb.train()
    assert wb(torch.zeros(2, 16), torch.zeros(2, 10), torch.tensor([0, 1]), classifier) == {}


@pytest.mark.parametrize("thresh", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("norm_type", [2, 1])
def test_projection_equals_the_official_maxnorm(thresh, norm_type):
    ours, theirs = spread_classifier(), spread_classifier()
    wb = method(max_norm=thresh, norm_type=norm_type, every="step")
    official = OfficialMaxNorm(thresh=thresh, lp_norm=norm_type)
    official.set_per_layer_thresh([theirs.weight.data, theirs.bias.data])  # before fine-tuning
    start(wb, ours)
    radius = float(official.per_layer_thresh[0])
    assert float(wb.radius) == radius
    before, bias = ours.weight.detach().clone(), ours.bias.detach().clone()
    generator = torch.Generator().manual_seed(1)
    for step in range(3):  # the radius stays the one fixed at the start
        wb.after_step(ours)
        official.pgd([theirs.weight.data, theirs.bias.data])
        assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias)
        if step == 0:  # rows within the ball left bit for bit, the others now on the sphere
            inside = torch.linalg.norm(before, ord=norm_type, dim=1) <= radius
            assert inside.any() and (~inside).any() == (thresh < 1)  # 1.0: the largest norm
            assert torch.equal(ours.weight[inside], before[inside])
            after = torch.linalg.norm(ours.weight[~inside], ord=norm_type, dim=1)
            assert torch.allclose(after, torch.full_like(after, radius), rtol=1e-6)
        with torch.no_grad():
            move = torch.randn(ours.weight.shape, generator=generator) * 0.3
            ours.weight += move
            theirs.weight += move
    assert torch.equal(ours.bias, bias)  # the bias is never projected


def test_absolute_radius_equals_the_official_projection_with_that_threshold():
    ours, theirs = spread_classifier(), spread_classifier()
    wb = method(max_norm=0.8, relative=False, every="step")
    official = OfficialMaxNorm()
    official.per_layer_thresh = [torch.tensor(0.8), float("inf")]
    start(wb, ours)
    wb.after_step(ours)
    official.pgd([theirs.weight.data, theirs.bias.data])
    assert float(wb.radius) == pytest.approx(0.8)
    assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias)
    assert wb.epoch_stats()["weight_balancing/clipped_classes"] == pytest.approx(
        float((torch.linalg.norm(spread_classifier().weight, dim=1) > 0.8).float().mean())
    )


def test_every_epoch_projects_only_after_the_last_step_of_an_epoch():
    classifier = spread_classifier()
    wb = method(max_norm=0.5)
    wb.train()
    x, logits, y = torch.zeros(2, 16), torch.zeros(2, 10), torch.tensor([0, 1])
    original = classifier.weight.detach().clone()
    for step in range(3):
        wb(x, logits, y, classifier, StepContext(0, step, 3))
        wb.after_step(classifier)
        changed = not torch.equal(classifier.weight, original)
        assert changed == (step == 2), step
    stats = wb.epoch_stats()
    assert stats["weight_balancing/projections"] == 1
    assert stats["weight_balancing/radius"] == pytest.approx(float(wb.radius))
    assert wb.epoch_stats() == {}  # reset: nothing since


def test_a_cosine_classifier_is_refused_with_the_fix():
    network = build_network("small_cnn", 4, in_chans=1, classifier="cosine")
    wb = build_method("weight_balancing", 4, network.num_features, [4, 3, 2, 1])
    features, logits = network(torch.randn(2, 1, 8, 8))
    assert wb(features, logits, torch.tensor([0, 1]), network.classifier) == {}
    with pytest.raises(UserError, match="set model.classifier=linear"):
        wb.after_step(network.classifier)
    assert WeightBalancing.classifiers == ("linear",)


def test_the_radius_is_a_buffer_a_checkpoint_carries():
    wb = method()
    start(wb, spread_classifier())
    fresh = method()
    fresh.load_state_dict(wb.state_dict())
    assert fresh.started() and float(fresh.radius) == float(wb.radius)
    moved = spread_classifier(seed=5)
    fresh.train()
    fresh(torch.zeros(2, 16), torch.zeros(2, 10), torch.tensor([0, 1]), moved)
    assert float(fresh.radius) == float(wb.radius)  # not recomputed from later weights


# ----------------------------------------------------------------------------- through the engine

RUN = tiny("data.ratio=4", "optim.epochs=3", "optim.lr=0.1", "name=run")


def run(tmp_path, *overrides, **kwargs):
    cfg = load_config(None, [*RUN, *overrides, f"out_dir={tmp_path}"])
    return train(cfg, **kwargs), tmp_path / "run"


def classifier_norms(run_dir) -> torch.Tensor:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["network"]
    return state["classifier.weight"].norm(dim=1)


def metrics_rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("every", ["epoch", "step"])
def test_the_engine_keeps_every_class_norm_within_the_radius(tmp_path, monkeypatch, every):
    after_step = WeightBalancing.after_step
    largest_after_steps = []

    def checked(self, classifier):
        after_step(self, classifier)
        largest_after_steps.append(float(classifier.weight.norm(dim=1).max() - self.radius))

    monkeypatch.setattr(WeightBalancing, "after_step", checked)
    final, run_dir = run(tmp_path / "wb", "method.name=weight_balancing", f"method.every={every}")
    radius = final["method_stats"]["radius"]
    start_min = final["method_stats"]["start_norm_min"]
    start_max = final["method_stats"]["start_norm_max"]
    assert radius == pytest.approx(start_min + 0.1 * (start_max - start_min))
    assert (classifier_norms(run_dir) <= radius + 1e-6).all()
    steps = metrics_rows(run_dir)[0]["weight_balancing/projections"]
    if every == "step":  # within the ball after every optimizer step
        assert max(largest_after_steps) <= 1e-6 and steps > 1
    else:
        assert steps == 1 and max(largest_after_steps) > 1e-6  # steps within an epoch outgrow it
    rows = metrics_rows(run_dir)
    assert len(rows) == 3
    for row in rows:
        assert 0 < row["weight_balancing/clipped_classes"] <= 1
        assert row["weight_balancing/max_norm_before"] > radius
        assert row["weight_balancing/mean_norm"] <= radius + 1e-6
        assert row["weight_balancing/radius"] == pytest.approx(radius)
    assert (
        final["method_stats"]["epochs_bound"] == 3
        and final["method_stats"]["first_bound_epoch"] == 1
    )
    assert not [w for w in final["warnings"] if "weight balancing" in w]
    assert final["method_info"] == {
        "max_norm": 0.1,
        "relative": True,
        "norm_type": 2.0,
        "every": every,
    }

    # Without the method the same run's class norms outgrow that radius.
    _, plain = run(tmp_path / "plain", "method.name=none")
    assert (classifier_norms(plain) > radius + 1e-3).any()


def test_a_radius_that_never_binds_is_a_warning_naming_one_that_would(tmp_path):
    final, run_dir = run(
        tmp_path, "method.name=weight_balancing", "method.relative=false", "method.max_norm=1000"
    )
    assert final["method_stats"]["epochs_bound"] == 0
    warning = [w for w in final["warnings"] if "weight balancing" in w]
    assert len(warning) == 1 and "never bound" in warning[0]
    largest = max(row["weight_balancing/max_norm_before"] for row in metrics_rows(run_dir))
    assert f"method.max_norm < {largest:.4g}" in warning[0]
    # The relative form names a relative setting.
    final, run_dir = run(
        tmp_path / "relative", "method.name=weight_balancing", "method.max_norm=1e4"
    )
    warning = [w for w in final["warnings"] if "weight balancing" in w]
    stats = final["method_stats"]
    binding = (stats["largest_norm_before_projection"] - stats["start_norm_min"]) / (
        stats["start_norm_max"] - stats["start_norm_min"]
    )
    assert len(warning) == 1 and f"method.max_norm < {binding:.4g}" in warning[0]


def test_an_interrupted_run_resumes_with_the_same_radius_and_result(tmp_path):
    overrides = ("method.name=weight_balancing", "method.every=step")
    whole, whole_dir = run(tmp_path / "whole", *overrides)

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", *overrides, on_epoch_end=stop_after_first)
    resumed, cut_dir = run(tmp_path / "cut", *overrides, resume=True)
    assert resumed["method_stats"] == whole["method_stats"]
    assert metrics_rows(cut_dir)[-1]["weight_balancing/radius"] == whole["method_stats"]["radius"]
    assert torch.equal(classifier_norms(cut_dir), classifier_norms(whole_dir))
    for key in ("top1", "balanced"):
        assert resumed[key] == whole[key]


# ----------------------------------------------------------------------------- DDP

DDP_RUN = tiny(
    "data.ratio=3",
    "data.batch_size=32",
    "data.augment=none",
    "model.options={norm: none}",
    "optim.epochs=2",
    "optim.lr=0.05",
    "method.name=weight_balancing",
    "method.every=step",
    "name=run",
    classes=6,
    size=12,
    train=60,
    test=10,
)


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    after_step = WeightBalancing.after_step
    weights = []

    def recording(self, classifier):
        after_step(self, classifier)
        weights.append(classifier.weight.detach().clone())

    WeightBalancing.after_step = recording
    try:
        train(load_config(None, [*DDP_RUN, f"out_dir={out_dir}"]))
        torch.save(torch.stack(weights), os.path.join(out_dir, f"weights{rank}.pt"))
    finally:
        WeightBalancing.after_step = after_step
        dist.destroy_process_group()


def test_every_process_applies_the_same_projection(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert final["status"] == "done" and final["processes"] == 2
    assert final["method_state_in_sync"] is True
    zero, one = (torch.load(tmp_path / f"weights{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(zero, one)  # bit for bit, after every step
    radius = final["method_stats"]["radius"]
    assert math.isfinite(radius) and (zero.norm(dim=2) <= radius + 1e-6).all()


@pytest.mark.parametrize("overrides", [["loss.name=ldam"], ["model.classifier=cosine"]])
def test_a_cosine_classifier_is_refused_before_training(tmp_path, overrides):
    from lt_bench.validate import validate

    cfg = load_config(None, [*tiny(), "method.name=weight_balancing", *overrides, f"out_dir={tmp_path}"])
    with pytest.raises(UserError, match="set model.classifier=linear"):
        validate(cfg)
    assert not any(tmp_path.iterdir())  # nothing written
