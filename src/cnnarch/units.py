"""How cnnarch prints numbers, and reads the numbers its sources print.

Every number the CLI and the report print goes through these functions, so each quantity reads
the same everywhere: thousands separated by commas, a fixed number of decimals, no negative zero
("-0.0" is printed "0.0"), and one byte unit. Byte sizes are decimal and always labeled:
1 KB = 10^3 bytes, 1 MB = 10^6 bytes, 1 GB = 10^9 bytes (not the binary KiB/MiB/GiB).

Papers and slides print figures such as "3.2M", "138M" or "159K"; `parse_printed` reads them,
and `explain_gap` judges a printed figure against a computed one by its printed precision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cnnarch.errors import CnnarchError

KB = 10**3
MB = 10**6
GB = 10**9

# Bytes per unit, in the order `byte_size` tries them.
BYTE_UNITS = {"B": 1, "KB": KB, "MB": MB, "GB": GB}

# The sentence that tells a reader the byte unit, once per page or output.
BYTE_UNIT_NOTE = "1 KB = 10³ bytes, 1 MB = 10⁶ bytes, 1 GB = 10⁹ bytes"

# Decimal prefixes of counts (parameters, MACs, values): 1234567 -> 1.23M.
COUNT_PREFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def number(value: float, digits: int | None = 0) -> str:
    """`value` with thousands separators and `digits` decimals: 2764.8 -> '2,765' (digits 0),
    '2,764.8' (digits 1). With digits None, whole numbers are printed whole and others to at
    most three decimals, trailing zeros dropped (2764.8 -> '2,764.8', 0.7244 -> '0.724')."""
    if digits is None:
        if float(value).is_integer():
            return _drop_negative_zero(f"{value:,.0f}")
        text = f"{value:,.3f}".rstrip("0").rstrip(".")
        return _drop_negative_zero(text)
    return _drop_negative_zero(f"{value:,.{digits}f}")


def signed(value: float, digits: int | None = 0) -> str:
    """A difference with its sign: 5.0 -> '+5', -5.2 -> '-5.2' (digits 1); one that rounds to
    zero has no sign ('0', never '+0' or '-0')."""
    text = number(value, digits)
    return text if text.startswith("-") or not _has_nonzero_digit(text) else "+" + text


def percent(fraction: float, digits: int = 1) -> str:
    """0.1234 -> '12.3%'."""
    return number(100 * fraction, digits) + "%"


def signed_percent(fraction: float, digits: int = 1) -> str:
    """A relative difference: 0.055 -> '+5.5%', -0.052 -> '-5.2%', 0.0001 -> '0.0%'."""
    return signed(100 * fraction, digits) + "%"


def mean_with_std(mean: float, std: float | None, digits: int = 2) -> str:
    """A mean over repeats with its standard deviation: (12.345, 0.5) -> '12.35 ± 0.50';
    a single repeat (std None) is the mean alone."""
    shown = number(mean, digits)
    return shown if std is None else f"{shown} ± {number(std, digits)}"


def prefixed(value: float, digits: int | None = 2, prefix: str | None = None) -> str:
    """A count with a decimal prefix: 950 -> '950', 1234567 -> '1.23M', 4.1e9 -> '4.10G'.

    `prefix` fixes the prefix ('G': 724406816 -> '0.72G'); by default the largest that keeps
    the value at 1 or more is used. Without a prefix a count is whole, unless `digits` is
    None: then the decimals are the value's own, as in `number` (for an axis's tick labels:
    1e6 -> '1M', 2.5e9 -> '2.5G', 0.1 -> '0.1')."""
    if prefix is None:
        prefix = _largest_at_most(abs(value), COUNT_PREFIXES)
    elif prefix not in COUNT_PREFIXES:
        raise ValueError(f"unknown prefix {prefix!r}; one of {', '.join(COUNT_PREFIXES)}")
    if prefix == "":
        return number(value, None if digits is None else 0)
    return number(value / COUNT_PREFIXES[prefix], digits) + prefix


def shape(dims: Iterable[int], times: str = "x") -> str:
    """A tensor's or an image's size: (3, 224, 224) -> '3x224x224' (the CLI's and the CSV
    files' spelling); `times="×"` on typeset pages: '3×224×224'."""
    return times.join(str(d) for d in dims)


def byte_size(nbytes: float, unit: str | None = None, digits: int = 2) -> str:
    """A labeled byte size in decimal units: 12845056 -> '12.85 MB'; 512 -> '512 B'.

    `unit` fixes the unit ('MB': 4000 -> '0.00 MB'); by default the largest that keeps the
    value at 1 or more is used. Whole bytes are printed without decimals."""
    if unit is None:
        unit = _largest_at_most(abs(nbytes), BYTE_UNITS)
    elif unit not in BYTE_UNITS:
        raise ValueError(f"unknown byte unit {unit!r}; one of {', '.join(BYTE_UNITS)}")
    shown = nbytes / BYTE_UNITS[unit]
    return f"{number(shown, 0 if unit == 'B' else digits)} {unit}"


# --- reading printed figures -----------------------------------------------------------------
def parse_printed(text: str | int | float, k: float = 1e3) -> float:
    """'3.2M' -> 3.2e6; '159K' -> 159 * k (GoogLeNet's Table 1 uses k = 1024); 4096 -> 4096."""
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]?)\s*", text)
    if match is None:
        raise CnnarchError(f"cannot read the printed number {text!r}")
    value, prefix = float(match.group(1)), match.group(2)
    scale = k if prefix == "K" else float(COUNT_PREFIXES[prefix])
    return value * scale


def resolution(text: str | int | float, k: float = 1e3) -> float:
    """The value of one unit in the last significant printed digit: '3.2M' -> 1e5,
    '159K' -> k, '380K' -> 10 k (trailing zeros of a whole number are not significant)."""
    if isinstance(text, int | float):
        return 1.0
    match = re.fullmatch(r"\s*([0-9]+)(?:\.([0-9]+))?\s*([KMG]?)\s*", text)
    if match is None:
        raise CnnarchError(f"cannot read the printed number {text!r}")
    whole, decimals, prefix = match.group(1), match.group(2) or "", match.group(3)
    scale = k if prefix == "K" else float(COUNT_PREFIXES[prefix])
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


def _largest_at_most(value: float, scales: dict[str, int]) -> str:
    """The name of the largest scale not above `value` (the smallest scale if none is)."""
    names = list(scales)
    chosen = names[0]
    for name in names:
        if value >= scales[name]:
            chosen = name
    return chosen


def _has_nonzero_digit(text: str) -> bool:
    return any(c in "123456789" for c in text)


def _drop_negative_zero(text: str) -> str:
    """'-0.0' -> '0.0': a value that rounds to zero is printed without a sign."""
    if text.startswith("-") and not _has_nonzero_digit(text):
        return text[1:]
    return text
