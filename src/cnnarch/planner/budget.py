"""Memory sizes as people write them: "24GiB", "40GB" (printed by `cnnarch.units.byte_size`)."""

from __future__ import annotations

import re

from cnnarch.errors import CnnarchError

# Decimal (SI) and binary (IEC) units: "24GB" and "24GiB" are different budgets.
UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*")


def parse_bytes(text: str) -> int:
    """'24GiB' -> 25769803776, '24GB' -> 24000000000, '512MB', '1.5GB'; '0GB' is 0."""
    match = _SIZE.fullmatch(str(text))
    units = {unit.lower(): factor for unit, factor in UNITS.items()}
    if match is None or match.group(2).lower() not in units:
        raise CnnarchError(
            f"malformed memory size {text!r}: write a number and a unit, e.g. 24GiB or 40GB "
            f"(units: {', '.join(UNITS)}; GB = 10^9 bytes, GiB = 2^30)"
        )
    return round(float(match.group(1)) * units[match.group(2).lower()])
