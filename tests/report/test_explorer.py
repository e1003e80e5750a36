"""The explorer's numbers: only totals the analyzer confirms are affine in the batch size are
embedded, and the training peak computed from the embedded moments equals the analyzer's at
every batch tried (the browser test compares the page itself with the CLI)."""

import re
from concurrent.futures import Future
from types import SimpleNamespace

import numpy as np
import pytest

from cnnarch import analyze
from cnnarch.analysis.memory import BREAKDOWN_ORDER
from cnnarch.analysis.precision import DTYPES
from cnnarch.errors import CnnarchError
from cnnarch.lecture.analyses import TRAINING_OPTIMIZER, Analyses
from cnnarch.lecture.explorer import (
    MAX_BATCH,
    PRECISIONS,
    QUANTITIES,
    Explorer,
    TrainingLines,
    _form,
    _peak_moments,
    affine_totals,
    other_optimizer,
    saved_by_layer,
    training_totals,
)
from cnnarch.planner import peak_lines
from cnnarch.planner.lines import SEARCH_LIMIT
from cnnarch.planner.search import training_step


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


def first_largest_by_brute_force(training: TrainingLines) -> list[int]:
    """The moments that are the first largest at some batch up to `MAX_BATCH`, batch by batch."""
    fixed = np.array([sum(v for v, _ in lines) for _, lines in training.moments])
    slope = np.array([sum(s for _, s in lines) for _, lines in training.moments])
    images = np.arange(MAX_BATCH - training.start + 1)
    return sorted(set(np.argmax(fixed[:, None] + slope[:, None] * images, axis=0).tolist()))


def test_the_embedded_moments_are_those_that_peak_up_to_the_largest_batch() -> None:
    def kept(*totals: tuple[int, int]) -> list[int]:
        lines = TrainingLines(1, [(str(i), [list(t)]) for i, t in enumerate(totals)])
        found = _peak_moments(lines).moments
        assert [int(phase) for phase, _ in found] == first_largest_by_brute_force(lines)
        return [int(phase) for phase, _ in found]

    # 20 bytes per image overtake 1,000,000 fixed ones after 50,000 images: within the page's
    # batches (they go to 65,536); 10 per image only after 100,000.
    assert kept((1_000_000, 0), (0, 20)) == [0, 1]
    assert kept((1_000_000, 0), (0, 10)) == [0]
    # A tie goes to the earlier moment: (0, 2) ties (100, 0) at 50 images, so both peak.
    assert kept((0, 2), (100, 0)) == [0, 1]
    assert kept((100, 0), (0, 2), (100, 0)) == [0, 1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        totals = [
            (int(f), int(s))
            for f, s in zip(rng.integers(0, 10**7, 30), rng.integers(0, 300, 30), strict=True)
        ]
        kept(*totals)


# One model whose peak moves from the optimizer step to the backward pass as the batch grows
# (AlexNet with Adam), one with batch-norm, one that trains only from batch 2 (Inception-v3's
# auxiliary head has batch-norm on a 1x1 map). Each precision with a different optimizer.
# Every precision is a different step: float32, bf16 and fp16 autocast, the model in bfloat16.
SETTINGS = [("float32", "sgd"), ("bfloat16", "momentum"), ("fp16", "adam"), ("bf16", "momentum")]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "resnet18", "inception_v3"])
def test_training_lines_equal_the_analyzer(name) -> None:
    modules = [(row.path,) for row in analyze(name).rows if row.depth == 1]
    totals = training_totals(analyze, name, modules)
    found, categories = totals.lines, totals.categories
    phases = set()
    peaks = {}
    for precision, optimizer in SETTINGS:
        training = found[precision][optimizer]
        setting = PRECISIONS[precision]
        step = training_step(True, {"optimizer": optimizer, "precision": setting.step})
        fit = totals.fit[precision][optimizer]
        if setting.dtype == "float32":  # the planner's own lines for the step (it takes no dtype)
            planner = peak_lines(name, precision=setting.step, optimizer=optimizer)
            assert len(fit.lines) <= len(planner.lines)
            for batch in (fit.smallest, 100, 12_345, MAX_BATCH, 2**20, SEARCH_LIMIT):
                assert fit.peak(batch) == planner.peak(batch)
            for usable in (10**9, 24 * 2**30, 80 * 2**30, 10**13):
                assert fit.largest_batch(usable) == planner.largest_batch(usable)
        for batch in (1, 7, 64, 1024, MAX_BATCH):
            settings = {"dtype": DTYPES[setting.dtype], "train": True, "step": step}
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
            assert fit.peak(batch) == peak
            saved = [at(line, batch, training.start) for line in totals.saved[precision]]
            assert saved == saved_by_layer(summary, modules)  # what the bars' labels show
            phases.add(phase)
            peaks[precision, optimizer, batch] = peak
    # the precisions are different steps: pure bf16 is not bf16 autocast
    assert peaks["bfloat16", "momentum", 64] != peaks["bf16", "momentum", 64]
    if name == "alexnet":
        assert phases == {"backward", "step"}  # the max really switches between moments
    assert {t.start for by_optimizer in found.values() for t in by_optimizer.values()} == {
        2 if name == "inception_v3" else 1
    }


def test_the_explorer_opens_on_the_pages_training_figures() -> None:
    analyses = Analyses(("alexnet",), batch_size=32)
    assert analyses.training("alexnet").training.optimizer == TRAINING_OPTIMIZER
    done: Future = Future()
    html = str(_form(Explorer("alexnet", {}, done, (), analyses.batch_size), ()))
    assert re.search(r'<input type="number" name="batch" [^>]*value="32"', html)
    assert f'<option value="{TRAINING_OPTIMIZER}" selected>SGD with momentum</option>' in html
    assert '<option value="training" selected>' in html
    assert '<option value="float32" selected>float32</option>' in html
    labels = re.findall(r'<option value="[^"]+"(?: selected)?>([^<]+)</option>', html)
    assert {"bf16 autocast", "fp16 autocast", "pure bf16"} <= set(labels)
    assert re.search(r'max="65536"', html)
    # allocated in all and resident at once are named apart, with the reason beside them
    assert "allocated during the pass (total)" in html and "resident at the peak" in html
    assert "freed once the layers after it have read it" in html
