"""Numbers and names as they paste into a paper: a real minus sign (Markdown: U+2212 "−"; LaTeX:
``$-$``), never a hyphen, and LaTeX text with every special character escaped, so that a display
name such as ``Fashion-MNIST-LT ρ=100`` or ``SAR (no pull) & BS`` typesets as written."""

from __future__ import annotations

import math
import re

MINUS = "\u2212"
DASH = "–"  # an empty cell
GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi",
    "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau", "φ": "phi", "χ": "chi", "ψ": "psi",
    "ω": "omega", "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Π": "Pi",
    "Σ": "Sigma", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}  # fmt: skip
TEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": "$<$",
    ">": "$>$",
    MINUS: "$-$",
    "±": r"$\pm$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "√": r"$\surd$",
    "½": r"$\frac{1}{2}$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
    "–": "--",
    "—": "---",
    **{letter: f"${chr(92)}{name}$" for letter, name in GREEK.items()},
}
RANGE = re.compile(r"(?<=\d)-(?=\d)")  # 20-100 in a caption: an en dash in LaTeX


def number(value: float, digits: int, plus: bool = False) -> str:
    """``value`` with ``digits`` decimals and a real minus sign (``plus``: "+" on positives, as a
    difference shows); a value that rounds to zero shows no sign. NaN: "–"."""
    if value is None or math.isnan(value):
        return DASH
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        return text.lstrip("-")
    if text.startswith("-"):
        return MINUS + text[1:]
    return f"+{text}" if plus else text


def tex(text: str) -> str:
    """Plain text (a name, a header, a cell) as LaTeX text."""
    return "".join(TEX.get(char, char) for char in str(text))


def tex_caption(text: str) -> str:
    """A caption sentence as LaTeX text: as :func:`tex`, and a range of numbers gets an en dash."""
    return tex(RANGE.sub(DASH, text))
