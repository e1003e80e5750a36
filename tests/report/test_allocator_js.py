"""The caching allocator's JavaScript port (cnnarch/report/assets/allocator.js) in headless
Chromium: for hand-made cases, each exercising one rule, seeded random storages and a real
training step's storages at limits from generous to out of memory, its replay returns exactly
what `cnnarch.planner.allocator.replay` returns (default settings)."""

import json
import random
from pathlib import Path

import pytest
from cdp_client import Browser, find_chromium

from cnnarch.analysis.trace import NEVER_FREED
from cnnarch.planner.allocator import Replay, replay
from cnnarch.planner.search import training_step
from cnnarch.planner.traces import StepTraces
from cnnarch.report.html import asset

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (apt-get install chromium; .ci/run does)",
    ),
]

MiB = 2**20

# name: (persistent, step, limit, what Python's replay returns)
HAND_MADE = {
    "small_pool_segment_shared": ([1000, 2000, MiB], [], None, Replay(1051648, 2 * MiB, False, 0)),
    # 1 MiB, then 1 MiB - 512 leaving 512 bytes, which a third request takes: one segment
    "small_pool_split_down_to_512": (
        [MiB, MiB - 512, 512],
        [],
        None,
        Replay(2 * MiB, 2 * MiB, False, 0),
    ),
    "five_mib_gets_20_mib_segment_rest_split": (
        [5 * MiB, 5 * MiB],
        [],
        None,
        Replay(10 * MiB, 20 * MiB, False, 0),
    ),
    "thirty_mib_own_segment_rounded_to_2_mib": (
        [30 * MiB + 1],
        [],
        None,
        Replay(30 * MiB + 512, 32 * MiB, False, 0),
    ),
    "large_block_not_split_for_1_mib_rest": (
        [19 * MiB],
        [],
        None,
        Replay(20 * MiB, 20 * MiB, False, 0),
    ),
    "pool_and_segment_boundaries": (
        [MiB, MiB + 1, 10 * MiB - 512, 10 * MiB],
        [],
        None,
        Replay(22 * MiB, 32 * MiB, False, 0),
    ),
    # no 32-bit arithmetic: every size rounded and added exactly
    "sizes_above_2_to_32_stay_exact": (
        [2**40 + 1, 5 * 2**32 + 3, 3 * 2**40],
        [(2**41 + 7, 0, 1), (2**41, 1, 2)],
        None,
        Replay(6 * 2**40 + 5 * 2**32 + 1536, 6 * 2**40 + 5 * 2**32 + 6 * MiB, False, 0),
    ),
    # A and B freed, merged into 10 MiB, which serves 9 MiB without a new segment.
    "merge_on_free_then_reuse": (
        [],
        [(5 * MiB, 0, 2), (5 * MiB, 0, 2), (5 * MiB, 0, 5), (9 * MiB, 3, 5)],
        None,
        Replay(15 * MiB, 20 * MiB, False, 0),
    ),
    # Holes of 6 MiB (segment 1) and 4 MiB (segment 2): 3 MiB takes the 4, 5.5 MiB the 6.
    "best_fit_smaller_block": (
        [],
        [
            (6 * MiB, 0, 2),
            (14 * MiB, 0, 9),
            (4 * MiB, 0, 2),
            (16 * MiB, 0, 9),
            (3 * MiB, 3, 9),
            (11 * MiB // 2, 4, 9),
        ],
        None,
        Replay(40 * MiB, 40 * MiB, False, 0),
    ),
    # Two 4 MiB holes of one segment: 3 MiB takes the lower, so that 2 MiB + 4 MiB + 10 MiB
    # merge into 16 MiB, which serves 12 MiB without a new segment.
    "best_fit_lower_address_among_equal_sizes": (
        [],
        [
            (4 * MiB, 0, 2),
            (2 * MiB, 0, 4),
            (4 * MiB, 0, 2),
            (10 * MiB, 0, 4),
            (3 * MiB, 3, 9),
            (12 * MiB, 5, 9),
        ],
        None,
        Replay(20 * MiB, 20 * MiB, False, 0),
    ),
    "limit_releases_cache_then_fits": (
        [],
        [(30 * MiB, 0, 1), (40 * MiB, 2, 3)],
        50 * MiB,
        Replay(40 * MiB, 40 * MiB, False, 1),
    ),
    # The 30 MiB segment is released, not the 16 MiB left of the persistent 4 MiB's segment.
    "release_keeps_split_segments": (
        [4 * MiB],
        [(30 * MiB, 0, 1), (40 * MiB, 2, 3)],
        60 * MiB,
        Replay(44 * MiB, 60 * MiB, False, 1),
    ),
    # Each request of each step frees the other pool's cached segment.
    "release_frees_small_pool_segments": (
        [],
        [(1000, 0, 1), (30 * MiB, 2, 3)],
        30 * MiB,
        Replay(30 * MiB, 30 * MiB, False, 3),
    ),
    "limit_out_of_memory": (
        [30 * MiB],
        [(40 * MiB, 0, 1)],
        50 * MiB,
        Replay(30 * MiB, 30 * MiB, True, 1),
    ),
    "limit_reached_exactly": ([30 * MiB], [], 30 * MiB, Replay(30 * MiB, 30 * MiB, False, 0)),
    # B takes A's block, freed at the same clock
    "free_before_allocation_at_one_clock": (
        [],
        [(12 * MiB, 0, 1), (12 * MiB, 1, 2)],
        None,
        Replay(12 * MiB, 12 * MiB, False, 0),
    ),
    # The first step makes a 20 MiB and a 12 MiB segment; in the second, 2 MiB takes the
    # 12 MiB one (best fit), so that the second 12 MiB storage needs a third segment.
    "second_step_starts_from_first_steps_cache": (
        [],
        [(12 * MiB, 2, 3), (2 * MiB, 0, 3), (12 * MiB, 2, 4)],
        None,
        Replay(26 * MiB, 44 * MiB, False, 0),
    ),
    "zero_byte_storages_get_no_block": (
        [0],
        [(0, 0, 1), (0, 0, 2), (1000, 1, 2)],
        None,
        Replay(1536, 2 * MiB, False, 0),
    ),
    "never_freed_storages_freed_at_step_end": (
        [],
        [(8 * MiB, 0, NEVER_FREED), (8 * MiB, 1, 2), (3 * MiB, 3, NEVER_FREED)],
        None,
        Replay(16 * MiB, 20 * MiB, False, 0),
    ),
}

REPLAY_ALL = """
(function (cases) {
  return cases.map(function (c) {
    var r = cnnarchAllocator.replay(c[0], c[1], c[2]);
    return [r.maxAllocated, r.maxReserved, r.outOfMemory, r.retries];
  });
})"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    html = Path(tmp_path_factory.mktemp("allocator")) / "allocator.html"
    html.write_text(f"<!doctype html><script>{asset('allocator.js')}</script>", encoding="utf-8")
    with Browser(CHROMIUM) as browser:
        browser.load(html)
        yield browser


def as_json(cases: list) -> str:
    return json.dumps([[list(p), [list(s) for s in step], limit] for p, step, limit in cases])


def js_replays(page: Browser, cases: list) -> list[Replay]:
    return [Replay(*r) for r in page.evaluate(f"{REPLAY_ALL}({as_json(cases)})")]


def python_replays(cases: list) -> list[Replay]:
    return [replay(persistent, step, limit=limit) for persistent, step, limit in cases]


def random_storages(seed: int, count: int) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Sizes from 0 to 200 MB (small, medium and large pools), random lifetimes, some alive to
    the step's end."""
    rng = random.Random(seed)

    def size() -> int:
        kind = rng.random()
        if kind < 0.05:
            return 0
        if kind < 0.4:
            return rng.randint(1, MiB + 4096)
        if kind < 0.75:
            return rng.randint(MiB, 12 * MiB)
        return rng.randint(12 * MiB, 200_000_000)

    persistent = [size() for _ in range(count // 10)]
    clocks = 2 * count
    step = []
    for _ in range(count):
        start = rng.randrange(clocks)
        stop = NEVER_FREED if rng.random() < 0.1 else start + rng.randint(1, clocks // 4)
        step.append((size(), start, stop))
    return persistent, step


# Limits as fractions of the reserved peak with none: from no retry through retries to out of
# memory.
FRACTIONS = (1.0, 0.98, 0.96, 0.94, 0.92, 0.9, 0.85, 0.8, 0.6, 0.4)


def limited(persistent: list[int], step: list) -> list:
    """The storages at no limit and at each of `FRACTIONS` of the reserved peak with none."""
    peak = replay(persistent, step).max_reserved
    return [(persistent, step, None)] + [(persistent, step, int(peak * f)) for f in FRACTIONS]


@pytest.fixture(scope="module")
def real_cases() -> list:
    traces = StepTraces("resnet18", None, training_step(True, {"optimizer": "momentum"}), "paper")
    traces.lines()
    cases = []
    for batch in (1, 2, 16, 96):
        storages = traces.storages(batch)
        assert storages is not None
        persistent, step = list(storages.persistent), list(storages.step)
        cases += limited(persistent, step)
    return cases


@pytest.fixture(scope="module")
def random_cases() -> list:
    return [case for seed in range(6) for case in limited(*random_storages(seed, 300))]


def test_hand_made_cases(page):
    cases = [case[:3] for case in HAND_MADE.values()]
    expected = [case[3] for case in HAND_MADE.values()]
    assert python_replays(cases) == expected  # each case exercises the rule it is named for
    found = js_replays(page, cases)
    for name, js, python in zip(HAND_MADE, found, expected, strict=True):
        assert js == python, name


def test_random_storages(page, random_cases):
    python = python_replays(random_cases)
    # the limits reach the cache's release and running out of memory
    assert any(r.retries and not r.out_of_memory for r in python)
    assert any(r.out_of_memory for r in python)
    assert js_replays(page, random_cases) == python


def test_real_training_steps(page, real_cases):
    python = python_replays(real_cases)
    assert any(r.retries and not r.out_of_memory for r in python)
    assert any(r.out_of_memory for r in python)
    assert js_replays(page, real_cases) == python


def test_fields_are_integers(page, random_cases, real_cases):
    cases = [case[:3] for case in HAND_MADE.values()] + random_cases + real_cases
    check = f"""({as_json(cases)}).every(function (c) {{
      var r = cnnarchAllocator.replay(c[0], c[1], c[2]);
      return Number.isSafeInteger(r.maxAllocated) && Number.isSafeInteger(r.maxReserved)
        && typeof r.outOfMemory === "boolean" && Number.isSafeInteger(r.retries);
    }})"""
    assert page.evaluate(check) is True
