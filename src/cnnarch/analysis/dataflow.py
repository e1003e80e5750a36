"""The data flow of a traced pass: which call produced each tensor a call read, read from the
rows' `input_ids` and `output_ids`, and what follows from it: residual additions, the branches
of a concatenation.

Everything here is found from the graph, never from names: a residual block is a module whose
forward adds two tensors that both come from its input along paths that share no call, one of
them possibly the input itself (an identity shortcut), whatever its children are called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnarch.analysis.summary import LayerRow

ADDITIONS = ("add", "add_")  # `a + b`, `torch.add(a, b)`, `a += b`
CONCATENATIONS = ("cat", "concat", "concatenate")


def children(rows: Sequence[LayerRow]) -> list[list[int]]:
    """For each row, the indices of the calls made directly inside it, in call order.

    Args:
        rows: a summary's rows (a module's row is followed by its subtree's).
    """
    kids: list[list[int]] = [[] for _ in rows]
    open_rows: list[int] = []  # the ancestors of the current row, deepest last
    for index, row in enumerate(rows):
        while open_rows and rows[open_rows[-1]].depth >= row.depth:
            open_rows.pop()
        if open_rows:
            kids[open_rows[-1]].append(index)
        open_rows.append(index)
    return kids


@dataclass(frozen=True)
class Lineage:
    """Where one tensor read inside a module comes from: the calls made directly in the module
    that lead to it (row indices), and whether it depends on the module's input."""

    rows: frozenset[int]
    from_input: bool


def lineage(
    rows: Sequence[LayerRow], parent: int, siblings: Sequence[int], tensor: int, before: int
) -> Lineage:
    """The calls among `siblings` (the calls made in `parent`) that `tensor` comes from, as the
    pass reached the call at position `before` of `siblings`.

    Args:
        rows: the summary's rows.
        parent: the index of the module's row.
        siblings: the indices of the calls made directly in it (`children(rows)[parent]`).
        tensor: the number of the tensor (an entry of a row's `input_ids`).
        before: the position in `siblings` of the call that reads it.
    """
    found: set[int] = set()
    from_input = False
    pending = [(tensor, before)]
    seen: set[tuple[int, int]] = set()
    while pending:
        wanted, until = pending.pop()
        if (wanted, until) in seen:
            continue
        seen.add((wanted, until))
        # The producer is the last call before `until` that returned the tensor (an in-place
        # call returns the tensor it read, and becomes its producer).
        producer = next(
            (p for p in range(until - 1, -1, -1) if wanted in rows[siblings[p]].output_ids), None
        )
        if producer is None:
            from_input = from_input or wanted in rows[parent].input_ids
            continue
        found.add(siblings[producer])
        pending.extend((t, producer) for t in rows[siblings[producer]].input_ids)
    return Lineage(frozenset(found), from_input)


@dataclass(frozen=True)
class Residual:
    """One residual addition: the module whose forward adds, and the two paths added."""

    block: int  # the row of the module (the residual block)
    addition: int  # the row of the addition
    main: tuple[int, ...]  # the calls on the longer path, in call order
    shortcut: tuple[int, ...]  # the calls on the shortcut: () for an identity
    # (calls that pass their input through unchanged, `nn.Identity`, are left out of both)

    @property
    def identity(self) -> bool:
        """Whether the shortcut is the block's input itself (no weights, no op)."""
        return not self.shortcut


def residuals(rows: Sequence[LayerRow]) -> list[Residual]:
    """The residual additions of a pass, in call order: additions of two tensors that both
    come from the input of the module that adds them, along paths that share no call.

    Args:
        rows: a summary's rows (`Summary.rows`; a summary without a pass has no data flow).
    """
    kids = children(rows)
    found = []
    for parent, siblings in enumerate(kids):
        for position, index in enumerate(siblings):
            row = rows[index]
            if row.kind != "op" or row.type not in ADDITIONS or len(row.input_ids) != 2:
                continue
            a, b = (lineage(rows, parent, siblings, t, position) for t in row.input_ids)
            if not (a.from_input and b.from_input) or a.rows & b.rows:
                continue
            # A call that returns what it read and computes nothing (`nn.Identity`) is no step.
            shortcut, main = (
                tuple(sorted(i for i in path if not _passes_through(rows[i])))
                for path in sorted((a.rows, b.rows), key=len)
            )
            found.append(Residual(parent, index, main, shortcut))
    return found


def _passes_through(row: LayerRow) -> bool:
    """Whether a call returned its input as it was: the same tensors and no op counted (an
    in-place ReLU returns its input too, but computes)."""
    return row.output_ids == row.input_ids and not row.flops


def concat_branches(
    rows: Sequence[LayerRow], parent: int, kids: Sequence[Sequence[int]] | None = None
) -> list[tuple[int, ...]] | None:
    """The branches of a module that concatenates (an Inception module): for each tensor its
    last concatenation joins, the calls made in the module that lead to it, in call order;
    None if the module concatenates nothing.

    Args:
        rows: a summary's rows.
        parent: the index of the module's row.
        kids: `children(rows)`, if already at hand.
    """
    siblings = (kids or children(rows))[parent]
    joins = [p for p, i in enumerate(siblings) if rows[i].type in CONCATENATIONS]
    if not joins:
        return None
    position = joins[-1]
    return [
        tuple(sorted(lineage(rows, parent, siblings, t, position).rows))
        for t in rows[siblings[position]].input_ids
    ]
