"""Config text that YAML reads as something else is refused, never trained silently: a flow mapping
without a space after its colons (``{num_classes:4}`` is the key ``num_classes:4`` with no value), a
key given twice in a YAML file (PyYAML keeps the last), and an override whose value is not valid
YAML. Each is one line, exit 2, nothing written."""

import pytest

from lt_bench.config import check_key_value_typos, load_config, to_dict
from lt_bench.errors import UserError
from tests.conftest import tiny
from tests.test_eval_cli import refused


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "data.options={num_classes:4,image_size:8}",
            "data.options: 'num_classes:4' looks like key:value without a space; "
            "write {num_classes: 4, ...}",
        ),
        (
            "data.options={num_classes: 4, image_size:8}",
            "data.options: 'image_size:8' looks like key:value without a space",
        ),
        ("loss={name:ce}", "loss: 'name:ce' looks like key:value without a space"),
        ("data.options={a: 1, a: 2}", "bad override 'data.options={a: 1, a: 2}' (found duplicate key a)"),
        ("optim.lr=[1", "bad override 'optim.lr=[1'"),
        ("optim.lr={", "bad override 'optim.lr={'"),
    ],
)
def test_a_misread_override_is_refused(tmp_path, capsys, override, message):
    argv = ["train", "-", *tiny(), override, f"out_dir={tmp_path / 'runs'}"]
    refused(argv, capsys, message, tmp_path)
    assert not (tmp_path / "runs").exists()


def test_the_flow_mapping_pitfall_in_a_yaml_file_is_refused(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("data:\n  name: synthetic\n  options: {num_classes:4, image_size: 8}\n")
    refused(
        ["train", str(config), f"out_dir={tmp_path / 'runs'}"],
        capsys,
        f"config file {config}: data.options: 'num_classes:4' looks like key:value without a space",
        tmp_path,
    )


@pytest.mark.parametrize(
    "text, key, line",
    [
        ("optim:\n  lr: 0.5\nseed: 1\noptim:\n  epochs: 3\n", "optim", 4),
        ("optim:\n  lr: 0.5\n  lr: 0.7\n", "lr", 3),
    ],
)
def test_a_key_given_twice_in_a_yaml_file_is_refused(tmp_path, capsys, text, key, line):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    refused(
        ["train", str(config), f"out_dir={tmp_path / 'runs'}"],
        capsys,
        f"config file {config}: {key!r} is given twice (line {line})",
        tmp_path,
    )


def test_spaced_flow_mappings_and_yaml_anchors_still_load(tmp_path):
    cfg = load_config(None, tiny())
    assert to_dict(cfg.data.options) == {
        "num_classes": 4,
        "image_size": 8,
        "train_per_class": 20,
        "test_per_class": 5,
    }
    config = tmp_path / "run.yaml"  # a merge key is not a key given twice
    config.write_text("base: &b {lr: 0.5}\n")
    with pytest.raises(UserError, match="unknown config key 'base'"):
        load_config(config)
    config.write_text("optim: {<<: {lr: 0.5, epochs: 3}, lr: 0.2}\n")
    assert load_config(config).optim.lr == 0.2 and load_config(config).optim.epochs == 3
    later = load_config(None, ["optim.lr=0.2", "optim.lr=0.3"])  # overrides: the later wins
    assert later.optim.lr == 0.3


def test_the_pitfall_is_found_at_any_depth():
    check_key_value_typos({"a": {"b": [{"c": 1}, {"d": "x:y"}]}, "url": "http://host:5000"})
    with pytest.raises(UserError, match=r"^a.b\[1\]: 'd:2' looks like key:value"):
        check_key_value_typos({"a": {"b": [{"c": 1}, {"d:2": None}]}})
