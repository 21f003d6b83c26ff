"""Row and column names: each run's automatic label, and the display names a study gives them.

Automatic: the method (plus the base loss and re-weighting when not plain CE, plus the second
stage), then the values that vary among the done runs of its data set, differ from their defaults
and were not tuned for the row (``final.json["tuned"]``: an arm's choice on validation, shown in
the settings table, never in a label), each with at most 4 significant digits:
``sar (trade_off=0)``, ``sar + balanced_softmax (detach_classifier=true)``,
``resnet20_cifar / none`` (``model.name`` as a prefix). Two settings that would share a label are
told apart by the keys they differ in, at full precision: runs that differ in anything but the
seed are never merged.

Display names: a study's arm labels and column names (``labels.json`` in the runs folder, written
by the sweep: :mod:`lt_bench.study.labels`) replace the automatic row label (``label``; the
automatic one stays in ``auto_label``) and name each data set @ ratio (``dataset_label``; the
``dataset`` column keeps ``<data.name>@<ratio>``).
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd

from lt_bench.config import LABEL_KEYS, run_defaults
from lt_bench.errors import UserError

DIGITS = 4  # significant digits of a value in a label
INTEGER = re.compile(r"-?\d+")


def setting_text(value) -> str:
    """A config value as the settings (and their comparisons) hold it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def short_value(text: str) -> str:
    """A setting's text with at most :data:`DIGITS` significant digits (``0.110153`` -> ``0.1102``);
    integers, booleans and names as they are."""
    if INTEGER.fullmatch(text):
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:.{DIGITS}g}" if math.isfinite(number) else text


def run_label(row) -> str:
    """The label's base: the method, plus the base loss and re-weighting when not plain CE, plus
    the second stage."""
    label = str(row.get("method.name"))
    loss, reweight = row.get("loss.name", "ce"), row.get("loss.reweight", "none")
    if loss != "ce" or reweight not in (None, "none"):
        label += f" + {loss}" + (f"-{reweight}" if reweight not in (None, "none") else "")
    stage = row.get("stage")
    if isinstance(stage, str) and stage:
        label += f" + {stage}"
    return label


def _tuned(frame: pd.DataFrame) -> dict:
    """Row index -> the keys tuned for that run (``tuned``: a JSON mapping; absent: none)."""
    texts = frame["tuned"] if "tuned" in frame else pd.Series("{}", index=frame.index)
    return {i: set(json.loads(t)) if isinstance(t, str) else set() for i, t in texts.items()}


def setting_labels(frame: pd.DataFrame) -> pd.Series:
    """Each run's automatic row label (module docstring)."""
    bases = frame.apply(run_label, axis=1)
    labels = bases.copy()
    settings = {i: json.loads(text) for i, text in frame["settings"].items()}
    tuned = _tuned(frame)
    done = frame[frame.status == "done"]
    for dataset, group in done.groupby("dataset", sort=False):
        varying = varying_keys([settings[i] for i in group.index])
        members = frame.index[frame.dataset == dataset]
        shown = {i: _shown_values(frame.loc[i], settings[i], varying, tuned[i]) for i in members}
        _tell_apart(shown, {i: bases[i] for i in members}, settings, done.index)
        for i in members:
            labels[i] = _label(bases[i], shown[i], settings[i])
    return labels


def varying_keys(settings: list[dict]) -> list[str]:
    """The keys (less :data:`LABEL_KEYS`) with two or more values among the settings that have
    them (a method's options exist only for its runs, a stage's only for its child runs). An
    option only some rows have, all with one value, is no label's: the settings table shows it
    where it is not the default."""
    keys = sorted({k for setting in settings for k in setting} - set(LABEL_KEYS))
    return [k for k in keys if len({setting[k] for setting in settings if k in setting}) > 1]


def _shown_values(row, setting: dict, varying: list[str], tuned: set) -> dict[str, str]:
    """The row's varying, non-tuned values that differ from their defaults: key -> shown text."""
    stage = row.get("stage.name")
    defaults = run_defaults(
        str(row.get("method.name")),
        str(row.get("loss.name")),
        stage if isinstance(stage, str) else None,
    )
    return {
        k: short_value(setting[k])
        for k in varying
        if k in setting
        and k not in tuned
        and k in defaults
        and setting[k] != setting_text(defaults[k])
    }


def _tell_apart(shown: dict, bases: dict, settings: dict, done) -> None:
    """Done runs of different settings that would share a label show, at full precision, the keys
    their settings differ in (tuned ones included): no two settings are merged into one row."""
    by_label: dict[str, list] = {}
    for i in shown:
        if i in done:
            by_label.setdefault(_label(bases[i], shown[i], settings[i]), []).append(i)
    for members in by_label.values():
        distinct = {json.dumps(settings[i], sort_keys=True) for i in members}
        if len(distinct) < 2:
            continue
        keys = sorted({k for i in members for k in settings[i]})
        differing = [k for k in keys if len({settings[i].get(k) for i in members}) > 1]
        for i in members:
            shown[i].update({k: settings[i][k] for k in differing if k in settings[i]})


def _label(base: str, shown: dict, setting: dict) -> str:
    label = f"{setting['model.name']} / {base}" if "model.name" in shown else base
    parts = [f"{k.removeprefix('method.')}={v}" for k, v in shown.items() if k != "model.name"]
    return label + (f" ({', '.join(parts)})" if parts else "")


def display_names(frame: pd.DataFrame, names: dict) -> tuple[pd.Series, pd.Series]:
    """The shown row label and column name of each run: ``names["rows"]`` (run folder -> display
    name) and ``names["columns"]`` (data set @ ratio -> display name) where given, else the
    automatic ones (``frame["auto_label"]``, ``frame["dataset"]``). A row is named as a whole: its
    runs on a data set (every seed) take the one name any of them is given. Two names for one row,
    or one name for two rows (or two columns), is a one-line UserError."""
    rows, columns = names.get("rows", {}), names.get("columns", {})
    labels = frame["auto_label"].copy()
    for (dataset, auto), runs in frame.groupby(["dataset", "auto_label"], sort=False):
        given = sorted({rows[r] for r in runs.run_dir if r in rows})
        if len(given) > 1:
            raise UserError(
                f"labels.json names row {auto!r} on {dataset} both {given[0]!r} and {given[1]!r} "
                "(its runs differ only in the seed); rerun the study's sweep to rewrite labels.json"
            )
        if given:
            labels[runs.index] = given[0]
    done = frame.status == "done"
    for dataset, runs in frame[done].assign(shown=labels[done]).groupby("dataset", sort=False):
        for name, rows_named in runs.groupby("shown", sort=False):
            autos = sorted(set(rows_named.auto_label))
            if len(autos) > 1:
                raise UserError(
                    f"rows {autos[0]!r} and {autos[1]!r} on {dataset} would both be named "
                    f"{name!r}; give each arm a label of its own and rerun the study's sweep"
                )
    datasets = frame["dataset"].map(lambda d: columns.get(d, d))
    shared = datasets.groupby(datasets).apply(lambda d: sorted(set(frame.dataset[d.index])))
    twice = next((sets for sets in shared if len(sets) > 1), None)
    if twice is not None:
        raise UserError(
            f"columns {twice[0]} and {twice[1]} would both be named {columns.get(twice[0])!r} "
            "(labels.json); give each column a name of its own"
        )
    return labels, datasets
