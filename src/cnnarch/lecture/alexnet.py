"""AlexNet's two towers (Krizhevsky et al. 2012): the parameters each GPU held, and the
activations that crossed between them."""

from __future__ import annotations

from typing import Any

# Where the towers exchange activations: (consumer, what the consumer's own device produced).
# conv3, fc6 and fc7 of each tower read both towers' maps; fc8 runs on the first GPU only.
CROSSINGS: tuple[tuple[str, str, str], ...] = (
    ("conv3", "towers.{i}.conv3", "towers.{i}.pool2"),
    ("fc6", "towers.{i}.fc6", "towers.{i}.pool5"),
    ("fc7", "towers.{i}.fc7", "towers.{i}.fc6"),
)


def _elements(shapes: Any) -> int:
    total = 0
    for shape in shapes:
        count = 1
        for d in shape:
            count *= int(d)
        total += count
    return total


def _first_call(rows: Any, path: str) -> Any:
    for row in rows:
        if row.path == path:
            return row
    raise KeyError(f"no analyzed call of {path}")


def tower_params(summary: Any) -> dict[str, int]:
    """Parameters on each GPU: each tower's layers; fc8 sits on the first GPU."""
    leaves = [r for r in summary.rows if r.is_leaf and not r.reused]
    towers = {
        f"tower {i}": sum(r.params for r in leaves if r.path.startswith(f"towers.{i}."))
        for i in (0, 1)
    }
    towers["fc8 (on GPU 0)"] = sum(r.params for r in leaves if r.path.startswith("fc8"))
    return towers


def crossings(summary: Any) -> list[dict[str, Any]]:
    """Values that cross from one GPU to the other, per image, at each exchange point."""
    rows = []
    for layer, consumer, own in CROSSINGS:
        moved = 0
        for i in (0, 1):
            consumed = _elements(_first_call(summary.rows, consumer.format(i=i)).input_shapes)
            produced = _elements(_first_call(summary.rows, own.format(i=i)).output_shapes)
            moved += consumed - produced
        rows.append({"layer": layer, "direction": "both ways", "values": moved})
    # fc8 reads both towers' fc7 outputs on GPU 0: only tower 1's half crosses.
    fc8 = _elements(_first_call(summary.rows, "fc8").input_shapes)
    own = _elements(_first_call(summary.rows, "towers.0.fc7").output_shapes)
    rows.append({"layer": "fc8", "direction": "GPU 1 → GPU 0", "values": fc8 - own})
    for row in rows:
        row["bytes"] = 4 * row["values"]
    return rows
