"""Every storage of a training step as a line in the batch (`StorageLines`): read off two
traces, as `plan` replays them, equal to the traces at other batches; another optimizer's read
off SGD's lines and one trace of its own; and a batch of one that takes another path read off
the two batches after it."""

from __future__ import annotations

import pytest

from cnnarch.planner import plan
from cnnarch.planner.search import training_step
from cnnarch.planner.traces import StepTraces, StorageLines, Storages

NEVER = 1 << 62


def traces(model: str, optimizer: str = "sgd", precision: str = "fp32") -> StepTraces:
    step = training_step(True, {"optimizer": optimizer, "precision": precision})
    return StepTraces(model, None, step, "paper")


def test_lines_through_two_steps_by_hand() -> None:
    one = Storages((100, 8), ((4, 0, 2), (10, 1, NEVER)))
    two = Storages((100, 16), ((4, 0, 2), (20, 1, NEVER)))
    lines = StorageLines.through(1, one, two)
    assert lines == StorageLines(1, ((100, 0), (8, 8)), ((4, 0, 0, 2), (10, 10, 1, NEVER)))
    assert lines.at(5) == Storages((100, 40), ((4, 0, 2), (50, 1, NEVER)))
    # a storage freed at another clock: not the same step
    moved = Storages((100, 16), ((4, 0, 3), (20, 1, NEVER)))
    assert StorageLines.through(1, one, moved) is None


def test_another_optimizer_adds_its_state_and_its_steps_storages_at_every_batch() -> None:
    sgd = StorageLines(1, ((100, 0), (8, 8), (4, 0)), ((10, 10, 1, 5),))
    # its state (two of 100 bytes) between the input and the scaler; one temporary in its step
    adam = Storages((100, 8, 100, 100, 4), ((10, 1, 5), (100, 7, 8)))
    derived = sgd.with_optimizer(adam)
    assert derived == StorageLines(
        1,
        ((100, 0), (8, 8), (100, 0), (100, 0), (4, 0)),
        ((10, 10, 1, 5), (100, 0, 7, 8)),
    )
    # the other's passes differ from SGD's: nothing is derived
    assert sgd.with_optimizer(Storages((100, 8, 100, 4), ((11, 1, 5),))) is None
    # a storage of its own before SGD's last one: not its step's
    assert sgd.with_optimizer(Storages((100, 8, 4), ((10, 1, 5), (100, 0, 8)))) is None
    # where its state could go before or after a storage that grows: ambiguous, nothing derived
    grows = StorageLines(1, ((8, 8),), ())
    assert grows.with_optimizer(Storages((8, 8), ())) is None


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("model", ["resnet18", "googlenet"])
def test_an_optimizer_read_off_sgds_lines_equals_its_own_traces(model, optimizer, precision):
    sgd = traces(model, "sgd", precision).storage_lines()
    own = traces(model, optimizer, precision)
    assert sgd is not None
    own.peak(sgd.start)
    derived = sgd.with_optimizer(own.storages(sgd.start))
    assert derived is not None
    assert derived == own.storage_lines()
    for batch in (sgd.start + 2, 37):
        own.peak(batch)
        assert derived.at(batch) == own.storages(batch)  # traced


def test_a_batch_of_one_that_takes_another_path_is_read_off_the_next_two() -> None:
    """The paper's VGG16 (no batch norm) runs another backward path at batch 1: its storages
    at larger batches are read off batches 2 and 3, and `plan` names its batch after five
    traces (1, 2, 3, the batch and the next) where it traced each batch it looked at."""
    vgg = traces("vgg16", "momentum")
    lines = vgg.storage_lines()
    assert lines is not None and lines.start == 2
    assert StorageLines.through(1, vgg.storages(1), vgg.storages(2)) is None
    read = lines.at(40)
    vgg.peak(40)
    assert vgg.storages(40) == read
    found = plan("vgg16", card="rtx4090", optimizer="momentum")
    assert found.checked and sorted(found.traced) == [1, 2, 3, found.batch, found.batch + 1]
