"""Every loss and re-weighting against a transcription of the file it follows.

Each ``reference_*`` function below follows its official code line by line (TensorFlow ops
written with their torch equivalents, ``.cuda()`` dropped); each test compares lt-bench's loss
and its gradient with it on seeded random logits and targets, imbalanced class counts and
several gamma and tau. Logits are float64 and constants are float32, as the references make them
(``torch.FloatTensor``, ``.float()``, ``tf.cast(..., tf.float32)``); tolerance: rtol 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lt_bench.losses import Reweighting, build_loss, class_balanced_weights

RTOL = 1e-6
SEEDS = (0, 1, 2)
# CIFAR-style exponential profile, 10 classes, ratio 100: 500 ... 5.
COUNTS = [int(500 * 0.01 ** (i / 9)) for i in range(10)]
BETA = 0.9999


def batch(seed: int, counts=COUNTS, size: int = 64):
    """Logits with spread (some confident, some not) and targets drawn from the long tail, every
    class present at least once."""
    generator = torch.Generator().manual_seed(seed)
    num_classes = len(counts)
    logits = 3 * torch.randn(size, num_classes, generator=generator, dtype=torch.float64)
    prior = torch.tensor(counts, dtype=torch.float64) / sum(counts)
    targets = torch.multinomial(prior, size, replacement=True, generator=generator)
    targets[:num_classes] = torch.arange(num_classes)
    return logits, targets


def value_and_grad(function, logits):
    logits = logits.clone().requires_grad_(True)
    value = function(logits)
    (grad,) = torch.autograd.grad(value, logits)
    return value.detach(), grad


def assert_same(ours, reference, logits):
    """Same value and same gradient with respect to the logits."""
    value, grad = value_and_grad(ours, logits)
    ref_value, ref_grad = value_and_grad(reference, logits)
    torch.testing.assert_close(value, ref_value, rtol=RTOL, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=RTOL, atol=1e-12)


# ---- kaidic/LDAM-DRW ------------------------------------------------------------------------


def reference_ldam_drw_per_cls_weights(cls_num_list, train_rule: str, epoch: int):
    """kaidic/LDAM-DRW cifar_train.py, the per_cls_weights of ``train_rule`` at ``epoch``."""
    if train_rule == "None":
        per_cls_weights = None
    elif train_rule == "Reweight":
        beta = 0.9999
        effective_num = 1.0 - np.power(beta, cls_num_list)
        per_cls_weights = (1.0 - beta) / np.array(effective_num)
        per_cls_weights = per_cls_weights / np.sum(per_cls_weights) * len(cls_num_list)
        per_cls_weights = torch.FloatTensor(per_cls_weights)
    elif train_rule == "DRW":
        idx = epoch // 160
        betas = [0, 0.9999]
        effective_num = 1.0 - np.power(betas[idx], cls_num_list)
        per_cls_weights = (1.0 - betas[idx]) / np.array(effective_num)
        per_cls_weights = per_cls_weights / np.sum(per_cls_weights) * len(cls_num_list)
        per_cls_weights = torch.FloatTensor(per_cls_weights)
    return per_cls_weights


def reference_ldam_drw_focal_loss(input_values, gamma):
    """kaidic/LDAM-DRW losses.py ``focal_loss``."""
    p = torch.exp(-input_values)
    loss = (1 - p) ** gamma * input_values
    return loss.mean()


def reference_ldam_drw_focal(input, target, weight, gamma):
    """kaidic/LDAM-DRW losses.py ``FocalLoss(weight, gamma).forward``."""
    return reference_ldam_drw_focal_loss(
        F.cross_entropy(input, target, reduction="none", weight=weight), gamma
    )


def reference_ldam_drw_ldam(cls_num_list, x, target, max_m=0.5, weight=None, s=30):
    """kaidic/LDAM-DRW losses.py ``LDAMLoss(cls_num_list, max_m, weight, s)`` on the normalised
    classifier's output ``x`` (cosines; the reference scales by s itself)."""
    m_list = 1.0 / np.sqrt(np.sqrt(cls_num_list))
    m_list = m_list * (max_m / np.max(m_list))
    m_list = torch.FloatTensor(m_list)
    index = torch.zeros_like(x, dtype=torch.uint8)
    index.scatter_(1, target.data.view(-1, 1), 1)
    index_float = index.type(x.dtype)  # torch.cuda.FloatTensor there
    batch_m = torch.matmul(m_list[None, :].to(x.dtype), index_float.transpose(0, 1))
    batch_m = batch_m.view((-1, 1))
    x_m = x - batch_m
    output = torch.where(index.bool(), x_m, x)
    return F.cross_entropy(s * output, target, weight=weight)


def reference_ldam_drw_ce(input, target, weight):
    """kaidic/LDAM-DRW cifar_train.py ``nn.CrossEntropyLoss(weight=per_cls_weights)``."""
    return torch.nn.CrossEntropyLoss(weight=weight)(input, target)


# ---- richardaecn/class-balanced-loss (TensorFlow; ops written in torch) ------------------------


def reference_cui_weights(img_num_per_cls, beta, num_classes):
    """richardaecn/class-balanced-loss src/cifar_main.py ``main``."""
    effective_num = 1.0 - np.power(beta, img_num_per_cls)
    weights = (1.0 - beta) / np.array(effective_num)
    weights = weights / np.sum(weights) * num_classes
    return weights


def tf_sigmoid_cross_entropy_with_logits(labels, logits):
    """tf.nn.sigmoid_cross_entropy_with_logits as TensorFlow documents it."""
    return torch.clamp(logits, min=0) - logits * labels + torch.log1p(torch.exp(-logits.abs()))


def reference_cui_focal_loss(labels, logits, alpha, gamma):
    """richardaecn/class-balanced-loss src/cifar_main.py ``focal_loss``."""
    cross_entropy = tf_sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    if gamma == 0.0:
        modulator = 1.0
    else:
        modulator = torch.exp(
            -gamma * labels * logits - gamma * torch.log1p(torch.exp(-1.0 * logits))
        )
    loss = modulator * cross_entropy
    weighted_loss = alpha * loss
    focal_loss = torch.sum(weighted_loss)
    focal_loss /= torch.sum(labels)
    return focal_loss


def reference_cui_tower_loss(label, logits, weights, loss_type, gamma, num_classes):
    """richardaecn/class-balanced-loss src/cifar_main.py ``_tower_fn``, the tower loss without
    weight decay. ``tf.losses.softmax_cross_entropy`` reduces by SUM_BY_NONZERO_WEIGHTS."""
    one_hot_labels = F.one_hot(label, num_classes).to(logits.dtype)
    weights = torch.as_tensor(weights, dtype=torch.float32)  # tf.cast(weights, tf.float32)
    weights = weights.unsqueeze(0).to(logits.dtype)
    weights = weights.repeat(one_hot_labels.shape[0], 1) * one_hot_labels
    weights = weights.sum(1)
    weights = weights.unsqueeze(1)
    weights = weights.repeat(1, num_classes)
    if loss_type == "softmax":
        sample_weights = weights.mean(1)
        per_sample = -(one_hot_labels * F.log_softmax(logits, 1)).sum(1)
        tower_loss = (sample_weights * per_sample).sum() / (sample_weights != 0).sum()
    elif loss_type == "sigmoid":
        tower_loss = weights * tf_sigmoid_cross_entropy_with_logits(one_hot_labels, logits)
        tower_loss = tower_loss.sum() / one_hot_labels.sum()
    elif loss_type == "focal":
        tower_loss = reference_cui_focal_loss(one_hot_labels, logits, weights, gamma)
    return tower_loss


def reference_vandit15_cb_focal(labels, logits, samples_per_cls, no_of_classes, beta, gamma):
    """vandit15/Class-balanced-loss-pytorch class_balanced_loss.py ``CB_loss`` with
    ``loss_type="focal"`` (the PyTorch port; it agrees with the official file for focal)."""
    effective_num = 1.0 - np.power(beta, samples_per_cls)
    weights = (1.0 - beta) / np.array(effective_num)
    weights = weights / np.sum(weights) * no_of_classes
    labels_one_hot = F.one_hot(labels, no_of_classes).to(logits.dtype)
    weights = torch.tensor(weights).float().to(logits.dtype)
    weights = weights.unsqueeze(0)
    weights = weights.repeat(labels_one_hot.shape[0], 1) * labels_one_hot
    weights = weights.sum(1)
    weights = weights.unsqueeze(1)
    weights = weights.repeat(1, no_of_classes)
    bce = F.binary_cross_entropy_with_logits(input=logits, target=labels_one_hot, reduction="none")
    if gamma == 0.0:
        modulator = 1.0
    else:
        modulator = torch.exp(
            -gamma * labels_one_hot * logits - gamma * torch.log(1 + torch.exp(-1.0 * logits))
        )
    return torch.sum(weights * modulator * bce) / torch.sum(labels_one_hot)


# ---- BalancedMetaSoftmax and logit adjustment --------------------------------------------------


def reference_balanced_softmax_loss(labels, logits, sample_per_class, reduction="mean"):
    """jiawei-ren/BalancedMetaSoftmax-Classification loss/BalancedSoftmaxLoss.py."""
    spc = sample_per_class.type_as(logits)
    spc = spc.unsqueeze(0).expand(logits.shape[0], -1)
    logits = logits + spc.log()
    return F.cross_entropy(input=logits, target=labels, reduction=reduction)


def reference_logit_adjusted_loss(labels, logits, base_probs, tau):
    """google-research/google-research logit_adjustment/utils.py ``build_loss_fn`` with
    ``use_la_loss``; ``base_probs`` the training class frequencies."""
    adjustment = torch.as_tensor(base_probs**tau + 1e-12, dtype=torch.float32)  # tf.cast
    logits = logits + torch.log(adjustment).to(logits.dtype)
    loss = F.cross_entropy(logits, labels, reduction="none")
    return loss.mean(0)


# ---- the tests ---------------------------------------------------------------------------------


def test_class_balanced_weights_are_both_references():
    ours = class_balanced_weights(COUNTS, BETA)
    assert torch.equal(ours, reference_ldam_drw_per_cls_weights(COUNTS, "Reweight", 0))
    cui = torch.as_tensor(reference_cui_weights(COUNTS, BETA, len(COUNTS)), dtype=torch.float32)
    assert torch.equal(ours, cui)


@pytest.mark.parametrize("epoch", [0, 159, 160, 199])
def test_drw_switches_when_ldam_drw_does(epoch):
    ours = Reweighting(COUNTS, "drw", cb_beta=BETA, drw_epoch=160)(epoch)
    reference = reference_ldam_drw_per_cls_weights(COUNTS, "DRW", epoch)
    if epoch < 160:  # the reference's beta 0: all-one weights, which every loss reads as none
        assert ours is None and torch.equal(reference, torch.ones(len(COUNTS)))
    else:
        assert torch.equal(ours, reference)


def ldam_drw_weights(rule: str, epoch: int = 0):
    """(lt-bench's weights, the reference's) for a train rule of LDAM-DRW's cifar_train.py."""
    kind = {"None": "none", "Reweight": "cb", "DRW": "drw"}[rule]
    ours = Reweighting(COUNTS, kind, cb_beta=BETA, drw_epoch=160)(epoch)
    return ours, reference_ldam_drw_per_cls_weights(COUNTS, rule, epoch)


def as_double(weight):
    return None if weight is None else weight.double()


RULES = [("None", 0), ("Reweight", 0), ("DRW", 0), ("DRW", 160)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rule,epoch", RULES)
def test_ce_matches_ldam_drw(seed, rule, epoch):
    logits, y = batch(seed)
    ours, reference = ldam_drw_weights(rule, epoch)
    loss = build_loss("ce", COUNTS).double()
    assert_same(
        lambda x: loss(x, y, as_double(ours)),
        lambda x: reference_ldam_drw_ce(x, y, as_double(reference)),
        logits,
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("rule,epoch", RULES)
def test_focal_matches_ldam_drw(seed, gamma, rule, epoch):
    logits, y = batch(seed)
    ours, reference = ldam_drw_weights(rule, epoch)
    loss = build_loss("focal", COUNTS, gamma=gamma).double()
    assert_same(
        lambda x: loss(x, y, as_double(ours)),
        lambda x: reference_ldam_drw_focal(x, y, as_double(reference), gamma),
        logits,
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rule,epoch", RULES)
@pytest.mark.parametrize("max_margin,scale", [(0.5, 30.0), (0.3, 16.0)])
def test_ldam_matches_ldam_drw(seed, rule, epoch, max_margin, scale):
    logits, y = batch(seed)
    cosines = torch.tanh(logits)  # in [-1, 1], as the normalised classifier gives
    ours, reference = ldam_drw_weights(rule, epoch)
    loss = build_loss("ldam", COUNTS, max_margin=max_margin, scale=scale).double()
    # lt-bench's cosine classifier hands the loss s cos; the reference scales cos itself.
    assert_same(
        lambda c: loss(scale * c, y, as_double(ours)),
        lambda c: reference_ldam_drw_ldam(COUNTS, c, y, max_margin, as_double(reference), scale),
        cosines,
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("beta", [0.99, 0.999, 0.9999])
def test_ce_batch_mean_matches_class_balanced_softmax(seed, beta):
    logits, y = batch(seed)
    weights = Reweighting(COUNTS, "cb", cb_beta=beta)(0)
    loss = build_loss("ce", COUNTS, weighting="batch_mean").double()
    cui = reference_cui_weights(COUNTS, beta, len(COUNTS))
    assert_same(
        lambda x: loss(x, y, as_double(weights)),
        lambda x: reference_cui_tower_loss(y, x, cui, "softmax", 0.0, len(COUNTS)),
        logits,
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("beta", [0.0, 0.999, 0.9999])
def test_sigmoid_focal_matches_class_balanced_focal(seed, gamma, beta):
    """beta 0 is the reference without re-weighting (all-one weights), lt-bench's none."""
    logits, y = batch(seed)
    weights = None if beta == 0.0 else Reweighting(COUNTS, "cb", cb_beta=beta)(0)
    loss = build_loss("sigmoid_focal", COUNTS, gamma=gamma).double()
    cui = reference_cui_weights(COUNTS, beta, len(COUNTS))
    loss_type = "sigmoid" if gamma == 0.0 else "focal"
    assert_same(
        lambda x: loss(x, y, as_double(weights)),
        lambda x: reference_cui_tower_loss(y, x, cui, loss_type, gamma, len(COUNTS)),
        logits,
    )
    assert_same(
        lambda x: loss(x, y, as_double(weights)),
        lambda x: reference_vandit15_cb_focal(y, x, COUNTS, len(COUNTS), beta, gamma),
        logits,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_balanced_softmax_matches_balanced_meta_softmax(seed):
    logits, y = batch(seed)
    loss = build_loss("balanced_softmax", COUNTS).double()
    assert_same(
        lambda x: loss(x, y),
        lambda x: reference_balanced_softmax_loss(y, x, torch.tensor(COUNTS)),
        logits,
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5])
def test_logit_adjustment_matches_google_research(seed, tau):
    logits, y = batch(seed)
    loss = build_loss("logit_adjust", COUNTS, tau=tau).double()
    base_probs = np.asarray(COUNTS, dtype=np.float64) / sum(COUNTS)
    assert_same(
        lambda x: loss(x, y),
        lambda x: reference_logit_adjusted_loss(y, x, base_probs, tau),
        logits,
    )


def test_the_comparisons_see_a_drift():
    """The departures differ from the references by far more than the tolerance, so a loss that
    drifted to one of them fails the tests above."""
    logits, y = batch(0)
    weights = Reweighting(COUNTS, "cb", cb_beta=BETA)(0).double()
    focal = build_loss("focal", COUNTS, gamma=1.0, weighting="weighted_mean").double()
    ldam_drw = reference_ldam_drw_focal(logits, y, weights, 1.0)
    assert abs(focal(logits, y, weights) / ldam_drw - 1) > 0.1
    ce = build_loss("ce", COUNTS).double()
    cui = reference_cui_weights(COUNTS, BETA, len(COUNTS))
    cui_softmax = reference_cui_tower_loss(y, logits, cui, "softmax", 0.0, len(COUNTS))
    assert abs(ce(logits, y, weights) / cui_softmax - 1) > 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_focal_weighted_mean_is_the_alpha_balanced_departure(seed):
    """``weighting=weighted_mean``: sum_i w_yi (1 - p_yi)^gamma CE_i / sum_i w_yi."""
    logits, y = batch(seed)
    weights = Reweighting(COUNTS, "cb", cb_beta=BETA)(0).double()
    loss = build_loss("focal", COUNTS, gamma=2.0, weighting="weighted_mean").double()
    p = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    w = weights[y]
    expected = (w * (1 - p) ** 2 * -torch.log(p)).sum() / w.sum()
    torch.testing.assert_close(loss(logits, y, weights), expected, rtol=RTOL, atol=0)
