"""Memory sizes as people write them: "24GiB", "40GB", or the bytes a runtime reports."""

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
# A bare number is a byte count, as `total_memory` prints it; one this small is a size whose
# unit was left out ("24" meant as 24 GB), not a memory.
SMALLEST_BARE_BYTES = 10**6
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")


def parse_bytes(text: str) -> int:
    """'24GiB' -> 25769803776, '24GB' -> 24000000000, '512MB', '1.5GB', '0GB' -> 0; a byte
    count as the runtime reports it: '25393692672' or '25393692672B'."""
    match = _SIZE.fullmatch(str(text))
    units = {unit.lower(): factor for unit, factor in UNITS.items()}
    hint = (
        "write a number and a unit, e.g. 24GiB or 40GB, or the exact bytes "
        f"(units: {', '.join(UNITS)}; GB = 10^9 bytes, GiB = 2^30)"
    )
    if match is None or (match.group(2) and match.group(2).lower() not in units):
        raise CnnarchError(f"malformed memory size {text!r}: {hint}")
    number, unit = match.groups()
    if not unit:
        if "." in number or int(number) < SMALLEST_BARE_BYTES:
            raise CnnarchError(f"memory size {text!r} has no unit: {hint}")
        return int(number)
    return round(float(number) * units[unit.lower()])
