"""The engine gives every regularizer an explicit context: the run seed through ``run_seed`` at
construction, the epoch and step through a StepContext at every call."""

from __future__ import annotations

import torch

from lt_bench.config import load_config
from lt_bench.engine import train
from lt_bench.methods import METHODS, StepContext, build_method
from lt_bench.methods.center import CenterLoss
from lt_bench.options import declared_types
from lt_bench.setup import build
from tests.conftest import tiny


def test_the_loop_passes_epoch_and_step(tmp_path, monkeypatch):
    seen: list[StepContext] = []
    forward = CenterLoss.forward

    def recording(self, features, logits, targets, classifier, context=None):
        seen.append(context)
        return forward(self, features, logits, targets, classifier, context)

    monkeypatch.setattr(CenterLoss, "forward", recording)
    cfg = load_config(
        None, [*tiny("data.ratio=2", "method.name=center", "optim.epochs=2"), f"out_dir={tmp_path}"]
    )
    train(cfg)
    steps = seen[0].steps_per_epoch
    assert steps > 1 and len(seen) == 2 * steps
    assert [(c.epoch, c.step) for c in seen] == [(e, s) for e in range(2) for s in range(steps)]
    assert [c.global_step for c in seen] == list(range(2 * steps))


def test_sar_counts_its_steps_from_the_context():
    sar = build_method("sar", 3, 4, [5, 3, 1], run_seed=0)
    classifier = torch.nn.Linear(4, 3)
    for step in range(5):
        sar(torch.randn(3, 4), None, torch.tensor([0, 1, 2]), classifier, StepContext(0, step, 5))
    assert sar.epoch_stats()["sar/steps"] == 5 and sar.epoch_stats()["sar/steps"] == 0


def test_run_seed_is_one_explicit_parameter_and_not_an_option(tmp_path):
    for name in METHODS.names():
        assert "run_seed" not in declared_types(METHODS.get(name)), name

    def anchors(*overrides):
        cfg = load_config(None, [*tiny("data.ratio=4", "method.name=sar", *overrides), f"out_dir={tmp_path}"])
        return build(cfg).method.random_anchors

    assert torch.equal(anchors("seed=1"), anchors("seed=1"))
    assert not torch.equal(anchors("seed=1"), anchors("seed=2"))
    assert torch.equal(anchors("seed=2", "method.seed=1"), anchors("seed=1"))  # method.seed wins


def test_old_sar_checkpoints_with_a_step_buffer_still_load():
    sar = build_method("sar", 3, 4, [5, 3, 1])
    state = {**sar.state_dict(), "steps": torch.tensor(0)}
    sar.load_state_dict(state)  # strict: the legacy buffer is dropped, nothing else is
