"""The one pre-flight check of a run's config, before any data is loaded or anything is written.

:func:`validate` refuses, with a one-line :class:`UserError` naming the key, the value and the fix:
unknown registry names (data set, method, loss, model), values outside their declared types and
ranges (every schema field, method, loss and re-weighting option; every string option is a declared
choice, :mod:`lt_bench.options`), ``data.options`` and ``model.options`` that the data set's or the
model's constructor does not take (with a close match), the rules that tie two keys together,
trackers, the device and the output folder. The config's ``imports:`` (plugins) are imported
first. It reads what each registry entry declares, so adding a method, loss, data set or stage
never touches this file. The ``build_*`` functions do not re-check.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os

from omegaconf import DictConfig

from lt_bench.config import SECTIONS, to_dict
from lt_bench.errors import UserError
from lt_bench.options import check_options, declared_defaults
from lt_bench.rundir import check_writable, run_path


def validate(cfg: DictConfig) -> None:
    """Every check a run's config gets before it starts (see the module's docstring). The
    config's ``imports`` are imported first (:mod:`lt_bench.plugins`): in a sweep worker or a
    submitit job too, as the list travels with each point's config."""
    from lt_bench.data import DATASETS
    from lt_bench.losses import LOSSES, Reweighting, split_loss_options
    from lt_bench.methods import METHODS
    from lt_bench.plugins import import_modules
    from lt_bench.trackers import check_trackers

    import_modules(cfg.get("imports") or ())  # before the registries are read

    check_schema_values(cfg)
    options = to_dict(cfg)
    method = {k: v for k, v in options["method"].items() if k != "name"}
    check_options(METHODS.get(cfg.method.name), method, "method.", f"method {cfg.method.name}")
    loss, reweight = split_loss_options(options["loss"])
    check_options(LOSSES.get(cfg.loss.name), loss, "loss.", f"loss {cfg.loss.name}")
    check_options(Reweighting, reweight, "loss.")
    check_options(
        DATASETS.get(cfg.data.name), options["data"]["options"], "data.options.",
        f"data set {cfg.data.name}",
    )  # fmt: skip
    check_model(cfg.model.name, options["model"]["options"])
    check_input_size(cfg)
    check_cross_keys(cfg, LOSSES.get(cfg.loss.name))
    check_method_classifier(cfg, METHODS.get(cfg.method.name), LOSSES.get(cfg.loss.name))
    check_feature_dim(cfg, METHODS.get(cfg.method.name))
    check_validation(cfg, DATASETS.get(cfg.data.name))
    check_device(cfg)
    check_trackers(cfg)
    check_writable(run_path(cfg))


def check_schema_values(cfg: DictConfig) -> None:
    """Every schema value within its declared type and range (``option_ranges`` on each dataclass
    of :mod:`lt_bench.config`)."""
    values = to_dict(cfg)
    for prefix, schema in SECTIONS.items():
        section = values[prefix.rstrip(".")] if prefix else values
        fields = {f.name for f in dataclasses.fields(schema)}
        check_options(schema, {k: v for k, v in section.items() if k in fields}, prefix)


def check_method_classifier(cfg: DictConfig, method_class, loss_class) -> None:
    """A method that works with only some classifier kinds (weight balancing's MaxNorm: linear)."""
    kind = loss_class.classifier if cfg.model.classifier == "auto" else cfg.model.classifier
    allowed = getattr(method_class, "classifiers", ("linear", "cosine"))
    if kind not in allowed:
        raise UserError(
            f"method {cfg.method.name} needs a {' or '.join(allowed)} classifier, but this run's is "
            f"{kind} (model.classifier={cfg.model.classifier}, loss {cfg.loss.name}); "
            f"set model.classifier={allowed[0]}"
        )


def check_feature_dim(cfg: DictConfig, method_class) -> None:
    """A method that needs features of some width (etf_dr's simplex ETF: D >= K) declares
    ``check_feature_dim(num_classes, feat_dim)``; the model is built on the meta device."""
    import timm
    import torch

    from lt_bench.data import build_dataset

    check = getattr(method_class, "check_feature_dim", None)
    if check is None:
        return
    try:
        info = build_dataset(cfg.data.name, root=cfg.data.root, **to_dict(cfg.data)["options"]).info
        with torch.device("meta"):
            model = timm.create_model(
                cfg.model.name, pretrained=False, num_classes=0, in_chans=info.image_size[0],
                **to_dict(cfg.model)["options"],
            )  # fmt: skip
    except Exception:  # noqa: BLE001  no class count before loading, or not buildable: build time tells
        return
    check(info.num_classes, model.num_features)


def check_cross_keys(cfg: DictConfig, loss_class) -> None:
    """The ranges that depend on another key."""
    optim = cfg.optim
    if optim.warmup_epochs > optim.epochs:
        raise UserError(
            f"optim.warmup_epochs={optim.warmup_epochs} is out of range; allowed: "
            f"<= optim.epochs ({optim.epochs}); lower optim.warmup_epochs or raise optim.epochs"
        )
    # A loss defined on a cosine classifier with its own scale (LDAM's loss.scale) owns the scale.
    own = None
    if loss_class.classifier == "cosine" and "scale" in declared_defaults(loss_class):
        own = cfg.loss.get("scale", declared_defaults(loss_class)["scale"])
    asked = cfg.model.cosine_scale
    if own is not None and asked is not None and own != asked:
        raise UserError(
            f"model.cosine_scale={asked:g} disagrees with loss.scale={own:g} of loss "
            f"{cfg.loss.name}; set only loss.scale"
        )
    from lt_bench.methods import METHODS

    if cfg.loss.name == "none" and not getattr(METHODS.get(cfg.method.name), "adds_loss", True):
        raise UserError(
            f"loss.name=none with method.name={cfg.method.name} trains nothing (the method adds no "
            "loss term); set loss.name=ce, or a method with its own loss (e.g. method.name=hpn)"
        )
    needs = getattr(loss_class, "method", None)  # a loss defined on one method's classifier
    if needs is not None and cfg.method.name != needs:
        raise UserError(
            f"loss {cfg.loss.name} is defined on the classifier of method {needs}, but "
            f"method.name={cfg.method.name}; set method.name={needs}"
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.data.batch_size % world:
        raise UserError(
            f"data.batch_size {cfg.data.batch_size} does not split over {world} processes; use a multiple"
        )


def check_validation(cfg: DictConfig, dataset) -> None:
    """Selection on validation needs validation images: ``data.val_per_class=0`` (the published
    split, no validation) refuses it, unless the data set has its own val list."""
    if cfg.train.select == "best_val" and cfg.data.val_per_class == 0 and "val" not in dataset.splits:
        raise UserError(
            "train.select=best_val needs validation images, but data.val_per_class=0 gives none; "
            "set data.val_per_class (e.g. 20) or use train.select=last"
        )


def check_device(cfg: DictConfig) -> None:
    """``train.device`` names a device this machine has; SyncBatchNorm asks for CUDA."""
    import torch

    name = cfg.train.device
    if name not in ("auto", "cpu") and not name.startswith("cuda") and name != "mps":
        raise UserError(f"train.device={name!r} is not a device; use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"device {name!r} asked for but CUDA is not available; use train.device=cpu"
        )
    cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    if cfg.train.sync_bn and int(os.environ.get("WORLD_SIZE", "1")) > 1 and not cuda:
        raise UserError(
            "train.sync_bn needs CUDA (SyncBatchNorm has no CPU kernel); set train.sync_bn=false"
        )


def check_model(name: str, options: dict) -> None:
    """A model timm knows, and ``model.options`` its constructor takes: the model is built on the
    meta device (no memory, no weights) with the options, and a keyword it refuses is named with
    the closest one it takes."""
    import timm
    import torch

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.7)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise UserError(f"timm has no model {name!r}; {hint}")
    if not options:
        return
    try:
        with torch.device("meta"):
            timm.create_model(name, pretrained=False, num_classes=0, **options)
    except TypeError as err:
        if "unexpected keyword" not in str(err):
            raise UserError(f"model.options {options} do not fit {name!r} ({err})") from err
        bad = str(err).split("'")[-2] if "'" in str(err) else "?"
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False, num_classes=0)
        takes = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
        close = difflib.get_close_matches(bad, takes, n=1)
        hint = f"did you mean {close[0]}?" if close else f"it takes: {', '.join(takes)}"
        raise UserError(f"model {name} has no option {bad!r} (model.options); {hint}") from err
    except Exception:  # noqa: BLE001  some models cannot be built on the meta device: build time tells
        return


def check_input_size(cfg: DictConfig) -> None:
    """The data set's images fit the model: a patch-embedding model (ViT, Mixer) built for a fixed
    size takes only that size, and any patch model only sides that are multiples of its patch size;
    CNNs with global pooling take any size (no patch embedding). The model is built on the meta device
    with the data set's channels and ``model.options``."""
    import timm
    import torch

    from lt_bench.data import build_dataset

    name, options = cfg.model.name, to_dict(cfg.model)["options"]
    try:
        channels, height, width = build_dataset(
            cfg.data.name, root=cfg.data.root, **to_dict(cfg.data)["options"]
        ).info.image_size
        with torch.device("meta"):
            model = timm.create_model(
                name, pretrained=False, num_classes=0, in_chans=channels, **options
            )
    except Exception:  # noqa: BLE001  no size known before loading, or not buildable: build time tells
        return
    from timm.layers import PatchEmbed

    patch = next((m for m in model.modules() if isinstance(m, PatchEmbed)), None)
    if patch is None or patch.img_size is None:  # no patch embedding: e.g. a CNN
        return
    expected, patch_size = tuple(patch.img_size), tuple(patch.patch_size)
    fixed = patch.strict_img_size
    if fixed and (height, width) == expected:
        return
    divides = height % patch_size[0] == 0 and width % patch_size[1] == 0
    if not fixed and (divides or patch.dynamic_img_pad):
        return
    divisor = _patch_size_for(height, width, patch_size[0])
    expects = (
        f"{expected[0]}x{expected[1]} inputs"
        if fixed
        else f"sides that are multiples of its {patch_size[0]}x{patch_size[1]} patches"
    )
    raise UserError(
        f"model {name} expects {expects}, {cfg.data.name} gives {height}x{width}: set "
        f"model.options.img_size={height if height == width else [height, width]} and "
        f"model.options.patch_size={divisor} (dividing it), or pick a CNN (e.g. model.name=small_cnn)"
    )  # fmt: skip


def _patch_size_for(height: int, width: int, largest: int) -> int:
    """The largest patch size up to ``largest`` that divides both sides into at least 4 patches
    each (1 when none does)."""
    side = math.gcd(height, width)
    fitting = [d for d in range(1, largest + 1) if side % d == 0 and side // d >= 4]
    return max(fitting, default=1)
