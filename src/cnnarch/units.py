"""How cnnarch prints numbers: counts, byte sizes, percentages and signed differences.

Every number the CLI and the report print goes through these functions, so each quantity reads
the same everywhere: thousands separated by commas, a fixed number of decimals, no negative zero
("-0.0" is printed "0.0"), and one byte unit. Byte sizes are decimal and always labelled:
1 KB = 10^3 bytes, 1 MB = 10^6 bytes, 1 GB = 10^9 bytes (not the binary KiB/MiB/GiB).
"""

from __future__ import annotations

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


def prefixed(value: float, digits: int = 2, prefix: str | None = None) -> str:
    """A count with a decimal prefix: 950 -> '950', 1234567 -> '1.23M', 4.1e9 -> '4.10G'.

    `prefix` fixes the prefix ('G': 724406816 -> '0.72G'); by default the largest that keeps
    the value at 1 or more is used."""
    if prefix is None:
        prefix = _largest_at_most(abs(value), COUNT_PREFIXES)
    elif prefix not in COUNT_PREFIXES:
        raise ValueError(f"unknown prefix {prefix!r}; one of {', '.join(COUNT_PREFIXES)}")
    if prefix == "":
        return number(value, 0)
    return number(value / COUNT_PREFIXES[prefix], digits) + prefix


def byte_size(nbytes: float, unit: str | None = None, digits: int = 2) -> str:
    """A labelled byte size in decimal units: 12845056 -> '12.85 MB'; 512 -> '512 B'.

    `unit` fixes the unit ('MB': 4000 -> '0.00 MB'); by default the largest that keeps the
    value at 1 or more is used. Whole bytes are printed without decimals."""
    if unit is None:
        unit = _largest_at_most(abs(nbytes), BYTE_UNITS)
    elif unit not in BYTE_UNITS:
        raise ValueError(f"unknown byte unit {unit!r}; one of {', '.join(BYTE_UNITS)}")
    shown = nbytes / BYTE_UNITS[unit]
    return f"{number(shown, 0 if unit == 'B' else digits)} {unit}"


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
