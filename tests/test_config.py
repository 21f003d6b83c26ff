import pytest

from lt_bench.config import load_config, run_id
from lt_bench.errors import UserError


def test_defaults_are_the_ldam_drw_cifar_recipe():
    cfg = load_config()
    assert (cfg.optim.epochs, cfg.data.batch_size, cfg.optim.lr, cfg.optim.warmup_epochs) == (
        200,
        128,
        0.1,
        5,
    )
    assert (
        list(cfg.optim.milestones) == [160, 180]
        and cfg.optim.gamma == 0.01
        and cfg.optim.weight_decay == 2e-4
    )


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  ratio: 50\nmethod:\n  name: sar\n  trade_off: 0.2\n")
    cfg = load_config(path, ["data.ratio=10", "method.filter_conf=0.95", "seed=3"])
    assert (
        cfg.data.ratio == 10
        and cfg.method.trade_off == 0.2
        and cfg.method.filter_conf == 0.95
        and cfg.seed == 3
    )


def test_run_id_is_stable_and_ignores_where_the_run_goes():
    a = load_config(None, ["method.name=sar"])
    assert run_id(a) == run_id(
        load_config(None, ["method.name=sar", "out_dir=elsewhere", "train.progress=false"])
    )
    assert run_id(a) != run_id(load_config(None, ["method.name=sar", "seed=1"]))
    assert len(run_id(a)) == 10


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.ration=5"], "unknown config key 'data.ration'; did you mean data.ratio?"),
        (["sed=1"], "unknown config key 'sed'; did you mean seed?"),
        (["data.batch_size=big"], "bad value for config key 'data.batch_size'"),
        (["method"], "is not key=value"),
    ],
)
def test_bad_overrides(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(None, overrides)


def test_yaml_must_be_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        load_config(path)
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_run_id_survives_a_new_schema_key_with_a_default():
    from lt_bench.config import identity

    cfg = load_config(None, ["method.name=sar", "data.ratio=10"])
    assert identity(cfg) == {"data": {"ratio": 10.0}, "method": {"name": "sar"}}
    assert identity(load_config()) == {}
