import pytest
import timm
import torch

import lt_bench  # noqa: F401
from lt_bench.errors import UserError
from lt_bench.models import build_network
from lt_bench.validate import check_model

CIFAR_PARAMS = {
    "resnet20_cifar": 0.27,
    "resnet32_cifar": 0.46,
    "resnet44_cifar": 0.66,
    "resnet56_cifar": 0.85,
    "resnet110_cifar": 1.73,
}


@pytest.mark.parametrize("name, millions", CIFAR_PARAMS.items())
def test_cifar_resnet_parameter_counts(name, millions):
    model = timm.create_model(name, num_classes=10)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.005)


def test_resnet32_exact_parameters_and_cifar100_head():
    model = timm.create_model("resnet32_cifar", num_classes=100)
    assert sum(p.numel() for p in model.parameters()) == 464154 - 650 + 6500
    assert model.get_classifier().out_features == 100


@pytest.mark.parametrize("name", [*CIFAR_PARAMS, "small_cnn"])
def test_registered_models_have_timm_face(name):
    model = timm.create_model(name, num_classes=5)
    cfg = timm.data.resolve_data_config({}, model=model)
    x = torch.randn(2, *cfg["input_size"])
    features = model.forward_features(x)
    pooled = model.forward_head(features, pre_logits=True)
    assert pooled.shape == (2, model.num_features)
    logits = model(x)
    assert logits.shape == (2, 5)
    logits.sum().backward()
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


def test_resolve_data_config_sees_cifar_settings():
    cfg = timm.data.resolve_data_config({}, model=timm.create_model("resnet32_cifar"))
    assert (
        cfg["input_size"] == (3, 32, 32)
        and cfg["mean"] == (0.4914, 0.4822, 0.4465)
        and cfg["crop_pct"] == 1.0
    )


def test_any_timm_model_by_name_and_unknown_names():
    network = build_network("resnet18", 3, in_chans=1)
    features, logits = network(torch.randn(2, 1, 32, 32))
    assert features.shape == (2, 512) and logits.shape == (2, 3)
    with pytest.raises(
        UserError, match="timm has no model 'resnet32_cifr'; did you mean resnet32_cifar"
    ):
        check_model("resnet32_cifr", {})  # the validator, before anything is built


def test_local_weights_file(tmp_path):
    source = build_network("small_cnn", 4, in_chans=1)
    torch.save(source.backbone.state_dict(), tmp_path / "w.pt")
    loaded = build_network("small_cnn", 4, in_chans=1, weights=str(tmp_path / "w.pt"))
    assert torch.equal(loaded.backbone.features[0].weight, source.backbone.features[0].weight)
    with pytest.raises(UserError, match="does not exist"):
        build_network("small_cnn", 4, in_chans=1, weights=str(tmp_path / "missing.pt"))
