"""Each second stage against a transcription of Decoupling's official code
(facebookresearch/classifier-balancing), on fixed tensors and on a tiny parent: tau-norm's logits
are ``tau_norm.py``'s (no bias), NCM's are ``KNNClassifier``'s with ``get_knncentroids``'s ``cl2n``
means, cRT and LWS train with the backbone in train mode (``run_networks.py``), the optimiser and
schedule of ``config/ImageNet_LT/cls_crt.yaml`` and ``cls_lws.yaml``, and the class-aware sampler
(its own transcription is in tests/data/test_samplers_official.py). Every departure is an option,
checked here to give what the stage did before."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_bench.stages import retrain, stage_options
from lt_bench.stages.base import head_lr_factor
from lt_bench.stages.ncm import class_mean_classifier
from lt_bench.stages.tau_norm import tau_normalize
from tests.test_stages import train_parent

# config/ImageNet_LT/cls_crt.yaml and cls_lws.yaml, as written there.
OFFICIAL = {
    "crt": {
        "lr": 0.2,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "batch_size": 512,
        "num_epochs": 10,
    },
    "lws": {"lr": 0.2, "momentum": 0.9, "weight_decay": 0.0005, "batch_size": 512, "num_epochs": 5},
}
NUM_SAMPLES_CLS = 4  # both configs' sampler

# Fixed features: 6 classes, imbalanced, off-centre (so that centring matters), 16 dimensions.
GEN = torch.Generator().manual_seed(0)
CLASS_COUNTS = [40, 20, 10, 6, 3, 1]
TRAIN_LABELS = torch.repeat_interleave(torch.arange(6), torch.tensor(CLASS_COUNTS))
CENTRES = 2.0 * torch.randn(6, 16, generator=GEN)
OFFSET = 5.0 * torch.ones(16)
TRAIN = OFFSET + CENTRES[TRAIN_LABELS] + 1.5 * torch.randn(len(TRAIN_LABELS), 16, generator=GEN)
TEST_LABELS = torch.arange(6).repeat(30)
TEST = OFFSET + CENTRES[TEST_LABELS] + 1.5 * torch.randn(180, 16, generator=GEN)


# --- tau_norm.py, transcribed (its batching of 512 kept; ``testset['feats']`` is ``feats``).
def official_pnorm(weights, p):
    normB = torch.norm(weights, 2, 1)
    ws = weights.clone()
    for i in range(weights.size(0)):
        ws[i] = ws[i] / torch.pow(normB[i], p)
    return ws


def official_tau_logits(feats, weights, batch_size=512):
    total_logits = []
    for i in range(len(feats) // batch_size + 1):
        feat = feats[batch_size * i : min(batch_size * (i + 1), len(feats))]
        total_logits.append(torch.mm(feat, weights.t()))  # dotproduct_similarity
    return torch.cat(total_logits)


@pytest.mark.parametrize("tau", np.linspace(0, 2, 21).tolist())
def test_tau_norm_logits_are_the_official_ones_without_bias(tau):
    linear = nn.Linear(16, 6)
    with torch.no_grad():
        rows = torch.randn(6, 16, generator=torch.Generator().manual_seed(1))
        linear.weight.copy_(0.1 * rows * torch.linspace(0.2, 3.0, 6)[:, None])  # norms far apart
        linear.bias.copy_(torch.linspace(-2.0, 2.0, 6))  # a bias that changes predictions
    theirs = official_tau_logits(TEST, official_pnorm(linear.weight.detach(), tau))
    with torch.no_grad():
        ours = tau_normalize(linear, tau)(TEST)
        kept = tau_normalize(linear, tau, bias=True)(TEST)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5)  # float32 round-off only
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert torch.allclose(kept, theirs + linear.bias.detach(), rtol=1e-5, atol=1e-5)  # departure
    assert (kept.argmax(1) != theirs.argmax(1)).any()  # the bias is not a harmless shift here


def test_the_tau_norm_stage_drops_the_bias_by_default():
    assert stage_options("tau_norm")().bias is False


# --- models/KNNClassifier.py and run_networks.py's get_knncentroids, transcribed (numpy and
# torch as there; ``feats``/``labels`` are what the train_plain loop collects).
def official_knn_centroids(feats, labels):
    featmean = feats.mean(axis=0)

    def get_centroids(feats_, labels_):
        centroids = []
        for i in np.unique(labels_):
            centroids.append(np.mean(feats_[labels_ == i], axis=0))
        return np.stack(centroids)

    un_centers = get_centroids(feats, labels)
    l2n_feats = torch.Tensor(feats.copy())
    norm_l2n = torch.norm(l2n_feats, 2, 1, keepdim=True)
    l2n_feats = l2n_feats / norm_l2n
    l2n_centers = get_centroids(l2n_feats.numpy(), labels)
    cl2n_feats = torch.Tensor(feats.copy())
    cl2n_feats = cl2n_feats - torch.Tensor(featmean)
    norm_cl2n = torch.norm(cl2n_feats, 2, 1, keepdim=True)
    cl2n_feats = cl2n_feats / norm_cl2n
    cl2n_centers = get_centroids(cl2n_feats.numpy(), labels)
    return {"mean": featmean, "uncs": un_centers, "l2ncs": l2n_centers, "cl2ncs": cl2n_centers}


def official_knn_logits(inputs, cfeats, feat_type="cl2n", dist_type="l2"):
    centroids = torch.from_numpy(cfeats[f"{feat_type}cs"])
    feat_mean = torch.from_numpy(cfeats["mean"])
    if feat_type == "cl2n":
        inputs = inputs - feat_mean
    if feat_type in ["l2n", "cl2n"]:
        norm_x = torch.norm(inputs, 2, 1, keepdim=True)
        inputs = inputs / norm_x
    if dist_type == "l2":
        AB = torch.mm(inputs, centroids.t())
        AA = (inputs**2).sum(dim=1, keepdim=True)
        BB = (centroids**2).sum(dim=1, keepdim=True)
        return -(AA + BB.t() - 2 * AB)
    return torch.mm(inputs, centroids.t()) / inputs.size(1)


@pytest.mark.parametrize(("centre", "feat_type"), [(True, "cl2n"), (False, "l2n")])
def test_ncm_is_the_official_knn_classifier(centre, feat_type):
    cfeats = official_knn_centroids(TRAIN.numpy(), TRAIN_LABELS.numpy())
    theirs = official_knn_logits(TEST, cfeats, feat_type)
    classifier = class_mean_classifier(TRAIN, TRAIN_LABELS, 6, centre=centre)
    with torch.no_grad():
        ours = classifier(TEST)
    assert torch.allclose(ours, theirs, atol=1e-5)  # float32 round-off only
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert torch.allclose(classifier.weight, torch.from_numpy(cfeats[f"{feat_type}cs"]), atol=1e-6)


def test_ncm_defaults_are_the_official_ones_and_differ_from_the_old_cosine():
    options = stage_options("ncm")()
    assert (options.centre, options.metric) == (True, "euclidean")
    cfeats = official_knn_centroids(TRAIN.numpy(), TRAIN_LABELS.numpy())
    official = official_knn_logits(TEST, cfeats).argmax(1)
    # The stage before issue 19 (its CosineNCM, transcribed): cosine between normalised
    # features and the normalised sums of each class's normalised features.
    sums = torch.zeros(6, 16).index_add_(0, TRAIN_LABELS, F.normalize(TRAIN, dim=1))
    old = F.normalize(TEST, dim=1) @ F.normalize(sums, dim=1).T
    departure = class_mean_classifier(TRAIN, TRAIN_LABELS, 6, centre=False, metric="cosine")
    with torch.no_grad():
        assert torch.allclose(departure(TEST), old, atol=1e-6)
    assert (old.argmax(1) != official).any()  # on these features the two disagree


def official_lrs(base_lr: float, epochs: int, steps: int) -> list[float]:
    """The lr of every step in run_networks.py: CosineAnnealingLR(optimizer, num_epochs,
    eta_min=endlr=0), its step() called at the start of each epoch, before training."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs, eta_min=0.0)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns of the old order the official code uses
        for _ in range(epochs):
            scheduler.step()
            lrs += [optimizer.param_groups[0]["lr"]] * steps
    return lrs


@pytest.mark.parametrize(("epochs", "steps"), [(10, 3), (5, 7), (1, 2)])
def test_the_epoch_cosine_schedule_is_the_official_one(epochs, steps):
    factor = head_lr_factor("epoch_cosine", epochs, steps)
    ours = [0.2 * factor(t) for t in range(epochs * steps)]
    assert ours == pytest.approx(official_lrs(0.2, epochs, steps), abs=1e-12)
    assert ours[-1] == pytest.approx(0.0, abs=1e-12)  # the last epoch trains at lr 0
    per_step = head_lr_factor("step_cosine", epochs, steps)  # the departure: down to 0 per step
    assert per_step(0) == 1 and per_step(epochs * steps - 1) > 0


@pytest.mark.parametrize("name", ["crt", "lws"])
def test_head_training_defaults_are_the_official_configs(name):
    options, official = stage_options(name)(), OFFICIAL[name]
    assert (options.lr, options.momentum, options.weight_decay) == (
        official["lr"],
        official["momentum"],
        official["weight_decay"],
    )
    assert (options.batch_size, options.epochs) == (official["batch_size"], official["num_epochs"])
    assert (options.schedule, options.sampler, options.samples_per_class, options.bn_mode) == (
        "epoch_cosine",
        "class_balanced",
        NUM_SAMPLES_CLS,
        "train",
    )


# --- On a tiny finished parent (small_cnn: BatchNorm after every convolution).
@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    return train_parent(tmp_path_factory.mktemp("runs"))


def backbone(path) -> dict:
    state = torch.load(path, weights_only=True)["network"]
    return {k: v for k, v in state.items() if k.startswith("backbone.")}


class Recorder:
    """Every BatchNorm forward's mode and every SGD optimiser's settings while a stage runs."""

    def __init__(self, monkeypatch):
        self.bn_training, self.optimizers = [], []
        recorder = self

        class SGD(torch.optim.SGD):
            def __init__(self, params, **settings):
                params = list(params)
                recorder.optimizers.append(({id(p) for p in params}, settings))
                super().__init__(params, **settings)

        monkeypatch.setattr(torch.optim, "SGD", SGD)
        self.remove = nn.modules.module.register_module_forward_pre_hook(self._record).remove

    def _record(self, module, args):
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            self.bn_training.append(module.training)


def metrics(child) -> list[dict]:
    return [json.loads(line) for line in (child / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["crt", "lws"])
def test_head_training_runs_the_backbone_in_train_mode_with_the_official_optimiser(
    parent, monkeypatch, name
):
    recorder = Recorder(monkeypatch)
    try:
        retrain(parent, name, [f"name={name}_official"])
    finally:
        recorder.remove()
    child = parent.parent / f"{name}_official"
    official = OFFICIAL[name]
    # BatchNorm normalised with batch statistics while the head trained, running ones at the end.
    assert True in recorder.bn_training and recorder.bn_training[-1] is False
    before, after = backbone(parent / "checkpoint.pt"), backbone(child / "checkpoint.pt")
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and all(
        k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked") for k in moved
    )
    steps = max(1, sum(json.loads((parent / "split.json").read_text())["counts"]) // 512)
    tracked = [k for k in before if k.endswith("num_batches_tracked")]
    assert all(after[k] - before[k] == official["num_epochs"] * steps for k in tracked)
    # SGD on the head's trainable parameters alone, with the config's settings.
    ((trained, settings),) = recorder.optimizers
    assert settings == {
        "lr": official["lr"],
        "momentum": official["momentum"],
        "weight_decay": official["weight_decay"],
    }
    assert len(trained) == (2 if name == "crt" else 1)  # cRT: weight and bias; LWS: the scales
    rows = metrics(child)
    assert len(rows) == official["num_epochs"]
    epochs = official["num_epochs"]
    expected = [
        0.5 * official["lr"] * (1 + math.cos(math.pi * e / epochs)) for e in range(1, epochs + 1)
    ]
    assert [r["lr"] for r in rows] == pytest.approx(expected, abs=1e-12)
    # Class-aware batches: int(images / 512) steps of 512 an epoch, the cycles carried over the
    # epochs, so over all epochs every class has been visited equally often, up to one visit.
    drawn = np.array([r["sampled_class_counts"] for r in rows])
    assert (drawn.sum(1) == steps * 512).all()
    assert np.ptp(drawn.sum(0)) <= NUM_SAMPLES_CLS


def test_the_old_head_training_is_kept_as_named_departures(parent, monkeypatch):
    """bn_mode=eval, schedule=step_cosine, sampler=class_balanced_iid, with the run's batch size
    and weight decay and lr 0.1: cRT as it was before issue 19."""
    recorder = Recorder(monkeypatch)
    old = [
        "stage.bn_mode=eval",
        "stage.schedule=step_cosine",
        "stage.sampler=class_balanced_iid",
        "stage.batch_size=16",
        "stage.weight_decay=2e-4",
        "stage.lr=0.1",
        "stage.epochs=3",
        "name=crt_old",
    ]
    try:
        retrain(parent, "crt", old)
    finally:
        recorder.remove()
    child = parent.parent / "crt_old"
    assert True not in recorder.bn_training  # running statistics throughout
    before, after = backbone(parent / "checkpoint.pt"), backbone(child / "checkpoint.pt")
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm's statistics too
    ((_, settings),) = recorder.optimizers
    assert settings == {"lr": 0.1, "momentum": 0.9, "weight_decay": 2e-4}
    rows = metrics(child)
    assert [r["lr"] for r in rows][-1] > 0  # per-step cosine: 0 only after the last step
    images = sum(json.loads((parent / "split.json").read_text())["counts"])
    assert all(sum(r["sampled_class_counts"]) == images // 16 * 16 for r in rows)


def test_tau_norm_child_logits_have_no_bias(parent):
    final = retrain(parent, "tau_norm", ["stage.taus=[0.0,1.0]", "name=tau_official"])
    weight = torch.load(parent / "checkpoint.pt", weights_only=True)["network"]["classifier.weight"]
    arrays = np.load(parent.parent / "tau_official" / "features.npz")
    features = torch.as_tensor(arrays["features"]).float()  # stored as float16
    theirs = official_tau_logits(features, official_pnorm(weight.float(), final["tau"]))
    assert np.allclose(arrays["logits"], theirs.numpy(), rtol=1e-2, atol=1e-2)  # float16's rounding
    assert (arrays["logits"].argmax(1) == theirs.numpy().argmax(1)).mean() > 0.95


def test_ncm_child_logits_are_the_official_knn_ones(parent):
    retrain(parent, "ncm", ["name=ncm_official"])
    state = torch.load(parent.parent / "ncm_official" / "checkpoint.pt", weights_only=True)
    cfeats = {"mean": state["network"]["classifier.mean"].numpy()}
    cfeats["cl2ncs"] = state["network"]["classifier.weight"].numpy()
    assert np.abs(cfeats["mean"]).max() > 0  # centred on the mean training feature
    arrays = np.load(parent.parent / "ncm_official" / "features.npz")
    theirs = official_knn_logits(torch.as_tensor(arrays["features"]).float(), cfeats)
    assert np.allclose(arrays["logits"], theirs.numpy(), atol=2e-3)  # features stored as float16
    assert (arrays["logits"].argmax(1) == theirs.numpy().argmax(1)).mean() > 0.95
