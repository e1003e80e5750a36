"""The one walk over nested inputs and outputs: every container PyTorch walks itself (tuples,
named tuples, lists, sets, dicts of any kind, dataclasses, deques), the same in `iter_tensors`
and `map_tensors`, and through the analyzer (rows, inputs, a training pass's outputs)."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict, deque, namedtuple

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.analysis.nested import iter_tensors, map_tensors

Pair = namedtuple("Pair", ["left", "right"])


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    extras: dict[str, torch.Tensor]
    note: str = "kept"


@dataclasses.dataclass(frozen=True)
class Frozen:
    value: torch.Tensor
    count: int = 3


def tensors(n: int) -> list[torch.Tensor]:
    return [torch.full((1,), float(i)) for i in range(n)]


def test_every_container_is_walked_in_order() -> None:
    a, b, c, d, e, f, g, h = tensors(8)
    nested = (
        a,
        [b, 1, "text", None],
        {"x": c, "y": Pair(d, 2.0)},
        OrderedDict(z=e),
        Output(f, {"k": g}),
        deque([h]),
    )
    assert [int(t) for t in iter_tensors(nested)] == list(range(8))
    assert iter_tensors(a) == [a] and iter_tensors(42) == [] and iter_tensors("abc") == []
    assert {int(t) for t in iter_tensors({a, b})} == {0, 1}  # sets: any order


def test_map_keeps_every_container_type_and_what_is_not_a_tensor() -> None:
    a, b, c, d, e, f = tensors(6)
    counts = defaultdict(int, k=a)
    value = [
        Pair(a, 7),
        OrderedDict(x=b),
        counts,
        Output(c, {"k": d}, note="hello"),
        Frozen(e),
        deque([f], maxlen=4),
        (1, "s"),
    ]
    out = map_tensors(value, lambda t: t + 10)
    assert isinstance(out[0], Pair) and int(out[0].left) == 10 and out[0].right == 7
    assert type(out[1]) is OrderedDict and int(out[1]["x"]) == 11
    assert type(out[2]) is defaultdict and out[2]["missing"] == 0  # the factory kept
    assert isinstance(out[3], Output) and out[3].note == "hello" and int(out[3].extras["k"]) == 13
    assert isinstance(out[4], Frozen) and int(out[4].value) == 14 and out[4].count == 3
    assert out[5].maxlen == 4 and int(out[5][0]) == 15
    assert out[6] == (1, "s")
    assert int(value[0].left) == 0  # the input is left as it was


class ReturnsADataclass(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> Output:
        logits = self.fc(x)
        return Output(logits, {"probs": logits.softmax(-1)})


class Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = ReturnsADataclass()

    def forward(self, x: torch.Tensor) -> Output:
        return self.inner(x)


def test_a_dataclass_output_has_its_shapes_and_is_trained_through() -> None:
    summary = cnnarch.analyze(Wrapper(), (4,), batch_size=2, train=True)
    inner = next(r for r in summary.rows if r.path == "inner")
    assert inner.output_shapes == ((2, 3), (2, 3))  # logits, probs
    # The backward pass starts from the dataclass's tensors: the linear layer's weight and
    # bias get gradients (4 x 3 + 3 floats), and SGD steps them.
    assert summary.training is not None and summary.training.grads_bytes == (12 + 3) * 4
    assert summary.training.saved_bytes > 0


def test_structured_inputs_of_every_kind() -> None:
    class TakesStructures(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, pair: Pair, extra: Frozen) -> torch.Tensor:
            return self.fc(pair.left + pair.right) * extra.value

    x = torch.randn(3, 4)
    summary = cnnarch.analyze(TakesStructures(), inputs=(Pair(x, x), Frozen(torch.ones(1))))
    assert summary.input_shapes == ((3, 4), (3, 4), (1,))
    assert summary.total_macs == 3 * 4 * 2


@pytest.mark.parametrize("container", [list, tuple, deque])
def test_lists_of_tensors_are_one_walk(container) -> None:
    a, b = tensors(2)
    assert iter_tensors(container([a, b])) == [a, b]
