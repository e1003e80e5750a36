"""Reading the numbers the way sources print them ("3.2M", "138M", "159K", "1.8")."""

from __future__ import annotations

import re

from cnnarch.errors import CnnarchError

_PREFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_printed(text: str | int | float, k: float = 1e3) -> float:
    """'3.2M' -> 3.2e6; '159K' -> 159 * k (GoogLeNet's Table 1 uses k = 1024); 4096 -> 4096."""
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]?)\s*", text)
    if match is None:
        raise CnnarchError(f"cannot read the printed number {text!r}")
    value, prefix = float(match.group(1)), match.group(2)
    scale = k if prefix == "K" else _PREFIXES[prefix]
    return value * scale


def relative_difference(computed: float, published: float) -> float:
    """(published - computed) / computed: how far the printed figure is from the derived one."""
    return (published - computed) / computed


def resolution(text: str | int | float, k: float = 1e3) -> float:
    """The value of one unit in the last significant printed digit: '3.2M' -> 1e5,
    '159K' -> k, '380K' -> 10 k (trailing zeros of a whole number are not significant)."""
    if isinstance(text, int | float):
        return 1.0
    match = re.fullmatch(r"\s*([0-9]+)(?:\.([0-9]+))?\s*([KMG]?)\s*", text)
    if match is None:
        raise CnnarchError(f"cannot read the printed number {text!r}")
    whole, decimals, prefix = match.group(1), match.group(2) or "", match.group(3)
    scale = k if prefix == "K" else _PREFIXES[prefix]
    if decimals:
        return scale / 10 ** len(decimals)
    trailing_zeros = len(whole) - len(whole.rstrip("0"))
    return scale * 10 ** min(trailing_zeros, len(whole) - 1)


def explain_gap(computed: float, printed: str | int | float, k: float = 1e3) -> str:
    """Why a printed figure differs from the computed one, judged by the printed precision:
    within one unit of its last digit it is the computed value rounded (or cut off);
    otherwise it does not follow from the architecture."""
    value = parse_printed(printed, k)
    unit = resolution(printed, k)
    gap = value - computed
    if gap == 0:
        return "equal"
    if abs(gap) <= 0.5 * unit + 1e-9 * unit:
        return "rounded as printed"
    if -unit < gap < 0:
        return "cut off rather than rounded as printed"
    if abs(gap) <= unit * (1 + 1e-9):
        return "within one unit of the last printed digit"
    return "does not follow from the architecture"
