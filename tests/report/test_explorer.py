"""The explorer's numbers: only totals the analyzer confirms are affine in the batch size are
embedded, and the training peak computed from the embedded moments equals the analyzer's at
every batch tried (the browser test compares the page itself with the CLI)."""

from types import SimpleNamespace

import pytest

from cnnarch import analyze
from cnnarch.analysis.loading import DTYPES
from cnnarch.analysis.memory import BREAKDOWN_ORDER
from cnnarch.errors import CnnarchError
from cnnarch.lecture.explorer import (
    QUANTITIES,
    TrainingLines,
    affine_totals,
    other_optimizer,
    saved_by_layer,
    training_totals,
)


def at(line: list[int], batch: int, start: int) -> int:
    return line[0] + line[1] * (batch - start)


def test_explorer_keeps_only_what_the_analyzer_confirms_is_affine() -> None:
    def fake(name, batch_size, dtype):
        # Every total affine in the batch except the inference peak, which bends at batch 5.
        values = {key: 10 + 3 * batch_size for key, _ in QUANTITIES}
        values["inference_peak_bytes"] = 100 * min(batch_size, 5)
        return SimpleNamespace(**values)

    lines = affine_totals(fake, "any")
    for precision in ("float32", "bfloat16", "float16"):
        assert "inference_peak_bytes" not in lines[precision]
        assert lines[precision]["total_macs"] == [13, 3]


def test_the_peak_is_the_first_largest_moment() -> None:
    # Two categories "a" and "b"; each moment's total at batch B is in its comment.
    lines = TrainingLines(
        1,
        [
            ("forward", [[100, 0], [2, 2]]),  # 102 + 2(B-1)
            ("backward", [[60, 0], [4, 4]]),  # 64 + 4(B-1)
            ("step", [[102, 0], [0, 2]]),  # 102 + 2(B-1): ties the forward moment everywhere
        ],
    )
    assert lines.peak(1, ("a", "b")) == (102, "forward", {"a": 100, "b": 2})
    # 102 + 2*19 = 140 = 64 + 4*19: a tie at batch 20 goes to the earlier moment.
    assert lines.peak(20, ("a", "b")) == (140, "forward", {"a": 100, "b": 40})
    assert lines.peak(21, ("a", "b")) == (144, "backward", {"a": 60, "b": 84})


def test_another_optimizer_must_share_sgds_passes() -> None:
    zeros = (0,) * len(BREAKDOWN_ORDER)
    sgd = SimpleNamespace(optimizer="sgd", optimizer_state_bytes=0, moments=(("forward", zeros),))
    sgd_lines = TrainingLines(1, [("forward", [[0, 0]] * len(BREAKDOWN_ORDER))])
    different = (("forward", (1, *zeros[1:])),)  # more parameters, not more optimizer state
    adam = SimpleNamespace(optimizer="adam", optimizer_state_bytes=0, moments=different)
    with pytest.raises(CnnarchError, match="differ from SGD's"):
        other_optimizer(1, adam, sgd, sgd_lines)


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_the_analyzers_moments_reproduce_its_peak(name) -> None:
    memory = analyze(name, batch_size=3, train=True, optimizer="adam").training
    totals = [sum(parts) for _, parts in memory.moments]
    first = totals.index(max(totals))
    assert totals[first] == memory.peak_bytes
    assert memory.moments[first][0] == memory.peak_phase
    # `at_peak` names only the terms the step has (no sharded terms without sharding).
    expected = {key: memory.at_peak.get(key, 0) for key in BREAKDOWN_ORDER}
    assert dict(zip(BREAKDOWN_ORDER, memory.moments[first][1], strict=True)) == expected
    assert set(memory.at_peak) <= set(BREAKDOWN_ORDER)
    assert "moments" not in memory.to_dict()


# One model whose peak moves from the optimizer step to the backward pass as the batch grows
# (AlexNet with Adam), one with batch-norm, one that trains only from batch 2 (Inception-v3's
# auxiliary head has batch-norm on a 1x1 map). Each precision with a different optimizer.
SETTINGS = [("float32", "sgd"), ("bfloat16", "momentum"), ("float16", "adam")]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "resnet18", "inception_v3"])
def test_training_lines_equal_the_analyzer(name) -> None:
    modules = [(row.path,) for row in analyze(name).rows if row.depth == 1]
    totals = training_totals(analyze, name, modules)
    found, categories = totals.lines, totals.categories
    phases = set()
    for precision, optimizer in SETTINGS:
        training = found[precision][optimizer]
        for batch in (1, 7, 64, 1024):
            settings = {"dtype": DTYPES[precision], "train": True, "optimizer": optimizer}
            if batch < training.start:
                with pytest.raises(CnnarchError, match="more than 1 value per channel"):
                    analyze(name, batch_size=batch, **settings)
                continue
            summary = analyze(name, batch_size=batch, **settings)
            expected = summary.training
            peak, phase, parts = training.peak(batch, categories)
            assert (peak, phase) == (expected.peak_bytes, expected.peak_phase), (precision, batch)
            assert parts == {c: v for c, v in expected.at_peak.items() if c in categories}
            assert all(v == 0 for c, v in expected.at_peak.items() if c not in categories)
            saved = [at(line, batch, training.start) for line in totals.saved[precision]]
            assert saved == saved_by_layer(summary, modules)  # what the bars' labels show
            phases.add(phase)
    if name == "alexnet":
        assert phases == {"backward", "step"}  # the max really switches between moments
    assert {t.start for by_optimizer in found.values() for t in by_optimizer.values()} == {
        2 if name == "inception_v3" else 1
    }
