"""The done runs' warnings, said once each: one line per distinct sentence, naming the rows (and the
number of runs) it concerns, under every table (``†``) and in report.md's warnings section.

Sentences that differ only in their numbers are one warning (SAR's anchor warning names each run's
own count of gated steps): each number that differs among them is shown as its range, e.g.
``carry 64–65% of their first copy after 434–448 gated steps``. ``final.json["warnings"]`` keeps
every run's exact sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pandas as pd

NUMBER = re.compile(r"\d+(?:\.\d+)?")
MARK = "†"


@dataclass
class RunWarning:
    """One distinct warning: its sentence (numbers that differ as ranges), the rows it concerns in
    order, and how many runs of each row carry it."""

    sentence: str
    rows: list[str] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)  # row -> runs that carry it


def grouped_warnings(pairs) -> list[RunWarning]:
    """``pairs``: (row, sentence) for every sentence of every run (a row repeats once per run).
    Returns the distinct warnings in order of first appearance."""
    groups: dict[str, tuple[list[str], RunWarning]] = {}
    for row, sentence in pairs:
        template = NUMBER.sub("#", sentence)
        sentences, warning = groups.setdefault(template, ([], RunWarning(sentence)))
        sentences.append(sentence)
        if row not in warning.runs:
            warning.rows.append(row)
        warning.runs[row] = warning.runs.get(row, 0) + 1
    out = []
    for template, (sentences, warning) in groups.items():
        warning.sentence = _with_ranges(template, sentences)
        out.append(warning)
    return out


def _with_ranges(template: str, sentences: list[str]) -> str:
    """The template's numbers filled in: the one value where all sentences agree, else its range."""
    numbers = [NUMBER.findall(sentence) for sentence in sentences]
    filled = []
    for position in zip(*numbers):
        values = sorted(set(position), key=float)
        filled.append(values[0] if len(values) == 1 else f"{values[0]}–{values[-1]}")
    parts = template.split("#")
    return "".join(part + (filled[i] if i < len(filled) else "") for i, part in enumerate(parts))


def run_warnings(done: pd.DataFrame) -> list[tuple[str, str]]:
    """(row label, sentence) for every warning sentence of every done run, in run order."""
    if "warnings" not in done:
        return []
    return [
        (label, sentence)
        for label, text in zip(done["label"], done["warnings"])
        for sentence in (json.loads(text) if isinstance(text, str) and text else [])
    ]


def footnote(warning: RunWarning) -> str:
    """The line under a table: ``† <sentence> (rows: a, b)``."""
    return f"{MARK} {warning.sentence} ({'row' if len(warning.rows) == 1 else 'rows'}: " + (
        ", ".join(warning.rows) + ")"
    )


def warnings_section(done: pd.DataFrame) -> list[str]:
    """report.md's warnings section: one line per distinct warning, naming its rows and how many
    of each row's runs carry it; [] when no done run has a warning."""
    pairs = run_warnings(done)
    if not pairs:
        return []
    warned = sum(
        1 for text in done["warnings"] if isinstance(text, str) and text and json.loads(text)
    )
    lines = [
        f"- {w.sentence} (" + ", ".join(f"{row}: {_runs(w.runs[row])}" for row in w.rows) + ")"
        for w in grouped_warnings(pairs)
    ]
    return [
        f"## Warnings ({warned} of {len(done)} runs; rows marked {MARK} in the tables)\n\n"
        + "\n".join(lines)
        + "\n"
    ]


def _runs(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''}"
