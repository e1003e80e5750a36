"""Per-layer views on small fake summaries: which rows are shown, and what they add up to."""

from dataclasses import dataclass, field

from cnnarch.report.layers import display_rows, frontier, layer_table, leaf_rows, top_rows


@dataclass(frozen=True)
class Row:
    path: str
    depth: int
    is_leaf: bool
    params: int = 0
    macs: int = 0
    activation_elements: int = 0
    type: str = "Conv2d"
    reused: bool = False
    output_shapes: tuple = ((1, 8, 4, 4),)

    @property
    def activation_bytes(self) -> int:
        return 4 * self.activation_elements


@dataclass
class FakeSummary:
    rows: list = field(default_factory=list)


def two_blocks(blocks: int = 2) -> FakeSummary:
    """A stem conv, `blocks` blocks of two convs, a head: rows at depths 0, 1 and 2."""
    rows = [Row("", 0, False, params=0)]
    rows.append(Row("stem", 1, True, params=10, macs=100, activation_elements=64))
    for b in range(blocks):
        rows.append(Row(f"block{b}", 1, False, params=40, macs=400, activation_elements=32))
        rows.append(Row(f"block{b}.a", 2, True, params=20, macs=200, activation_elements=16))
        rows.append(Row(f"block{b}.b", 2, True, params=20, macs=200, activation_elements=16))
    rows.append(Row("head", 1, True, params=5, macs=5, activation_elements=2, type="Linear"))
    return FakeSummary(rows)


def test_leaves_and_frontier_add_up_to_the_same_totals() -> None:
    summary = two_blocks()
    leaves = leaf_rows(summary.rows)
    assert [r.path for r in leaves] == [
        "stem",
        "block0.a",
        "block0.b",
        "block1.a",
        "block1.b",
        "head",
    ]
    blocks = frontier(summary.rows, 1)
    assert [r.path for r in blocks] == ["stem", "block0", "block1", "head"]
    for attribute in ("params", "macs", "activation_elements"):
        assert sum(getattr(r, attribute) for r in leaves) == sum(
            getattr(r, attribute) for r in blocks
        )


def test_deep_models_are_shown_block_by_block() -> None:
    small = two_blocks()
    rows, depth = display_rows(small)
    assert depth is None and len(rows) == 6
    big = two_blocks(blocks=40)  # 82 leaves > the limit; 42 rows at depth 1
    rows, depth = display_rows(big, limit=70)
    assert depth == 1
    assert len(rows) == 42


def test_layer_table_reads_the_rows() -> None:
    table = layer_table("toy", two_blocks())
    assert table.name == "layers_toy"
    first = table.rows[0]
    assert first == {
        "layer": "stem",
        "type": "Conv2d",
        "output": (8, 4, 4),  # batch dimension dropped
        "activations": 64,
        "memory": 256,
        "params": 10,
        "macs": 100,
    }
    assert "every layer" in table.title


def test_top_rows_share() -> None:
    rows = leaf_rows(two_blocks().rows)
    top = top_rows(rows, "params", count=1)
    assert top.rows == ("block0.a",)
    assert top.fraction == 20 / 95
