"""Which code made a run: the lt-bench version and, in a git checkout, the commit and whether the
package's source differed from it (no torch here, so ``show`` and ``sweep --status`` stay fast).

A run's ``final.json["versions"]`` holds ``lt_bench``, ``git_commit``, ``git_dirty`` and
``source_sha1``: a hash of ``git diff HEAD -- lt_bench`` and of the package's untracked files when
the package differs from the commit (None when it does not, or outside a checkout). Two runs were made by the same code
when all three agree; :func:`code_difference` says how a run's code differs from the code now.
Only the package's source is compared: results, experiments and notebooks may change freely.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
KEYS = ("lt_bench", "git_commit", "source_sha1")


def _git(*args: str) -> str | None:
    """``git args`` run in the package's checkout; None outside one or without git."""
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=PACKAGE
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.cache
def code_identity() -> dict:
    """``{"lt_bench": version, "git_commit": sha or None, "git_dirty": bool or None,
    "source_sha1": hash of the package's uncommitted changes or None}``, computed once a process.
    The commit counts only when the checkout is this package's own (its top level holds
    ``lt_bench/``): an installed copy inside some other repository has no commit."""
    import lt_bench

    out = {"lt_bench": lt_bench.__version__, "git_commit": None, "git_dirty": None, "source_sha1": None}
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != PACKAGE.parent:
        return out
    out["git_commit"] = (_git("rev-parse", "HEAD") or "").strip() or None
    diff = _git("diff", "HEAD", "--", str(PACKAGE))
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", str(PACKAGE))
    if diff is None or untracked is None:
        return out
    digest = hashlib.sha1(diff.encode())
    for name in sorted(untracked.splitlines()):  # paths relative to the package; a new module is a change too: its name and content
        digest.update(name.encode() + b"\0" + (PACKAGE / name).read_bytes())
    out["git_dirty"] = bool(diff or untracked.strip())
    out["source_sha1"] = digest.hexdigest()[:12] if out["git_dirty"] else None
    return out


def code_difference(versions: dict | None, now: dict | None = None) -> str | None:
    """How the code recorded in a run's ``final.json["versions"]`` differs from ``now`` (default:
    the code running this), in a few words; None when it is the same code, or when the run
    records none of it (runs older than this record are not flagged). Commits are compared only
    when both sides have one (a run made outside a checkout, or an installed copy, compares its
    version alone)."""
    if not versions or not any(versions.get(key) for key in KEYS):
        return None
    now = code_identity() if now is None else now
    parts = []
    if versions.get("lt_bench") != now["lt_bench"]:
        parts.append(f"lt-bench {versions.get('lt_bench')} (now {now['lt_bench']})")
    if not (versions.get("git_commit") and now["git_commit"]):
        pass  # a run or a copy outside a checkout: only the version can be compared
    elif versions["git_commit"] != now["git_commit"]:
        parts.append(f"commit {versions['git_commit'][:8]} (now {now['git_commit'][:8]})")
    elif versions.get("source_sha1") != now["source_sha1"]:
        parts.append("other uncommitted changes to lt_bench/")
    return "; ".join(parts) or None
