"""Fault injection at named points of a run, for tests (as etcd's and TiKV's failpoints).

``LT_BENCH_FAILPOINT`` names one action at one point, ``ACTION:POINT[:key=value...]``:

- ``kill:train_step:epoch=2:step=3``: the process SIGKILLs itself just before the 3rd optimizer
  step of the 2nd epoch (both 1-based); ``kill:epoch=2:step=3`` is short for it;
- ``kill:checkpoint_write:epoch=2``: after the 2nd epoch's checkpoint is written to its temporary
  file, before the rename that publishes it;
- ``kill:final_evaluation``: after the final evaluation wrote its files, before ``final.json``;
- ``raise:tracker:name=mlflow:epoch=2``: a tracker call fails (name, and epoch for per-epoch calls);
- ``raise:...``: raise :class:`FailpointError` there instead (an ordinary crash, for in-process tests).

A point fires when every key given matches its keyword arguments. Unset, a point costs one
attribute read: nothing in a normal run depends on this module.
"""

from __future__ import annotations

import os
import signal

ACTIONS = ("kill", "raise")
POINTS = ("train_step", "checkpoint_write", "final_evaluation", "tracker")


class FailpointError(RuntimeError):
    """Raised by a ``raise:`` failpoint."""


def parse(spec: str) -> tuple[str, str, dict[str, str]]:
    """``"kill:train_step:epoch=2:step=3"`` -> ``("kill", "train_step", {"epoch": "2", "step": "3"})``."""
    action, *rest = spec.split(":")
    if rest and "=" in rest[0]:
        rest = ["train_step", *rest]
    if action not in ACTIONS or not rest or rest[0] not in POINTS:
        raise ValueError(
            f"LT_BENCH_FAILPOINT={spec!r} is not ACTION:POINT[:key=value...] with ACTION one of "
            f"{', '.join(ACTIONS)} and POINT one of {', '.join(POINTS)}"
        )
    where = dict(part.split("=", 1) for part in rest[1:])
    return action, rest[0], where


_ARMED = parse(os.environ["LT_BENCH_FAILPOINT"]) if os.environ.get("LT_BENCH_FAILPOINT") else None


def arm(spec: str | None) -> None:
    """Arm a failpoint in this process (``None`` disarms); the environment variable arms it at import."""
    global _ARMED
    _ARMED = parse(spec) if spec else None


def failpoint(point: str, **where: object) -> None:
    """Fire the armed failpoint if it names ``point`` and every key it gives matches ``where``."""
    if _ARMED is None:
        return
    action, armed_point, armed_where = _ARMED
    if armed_point != point or any(str(where.get(k)) != v for k, v in armed_where.items()):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise FailpointError(f"failpoint {point} {armed_where} fired")
