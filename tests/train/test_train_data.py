"""Any data: map-style Datasets (tensors, PIL images, torchvision's FakeData interface), a
DataLoader with workers, a transform hook; what keeps resume bit-exact; what is refused."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset
from train_helpers import TinyNet, tiny_config, without_timing, write_tiny_fashion

from cnnarch.data import ImageDataset, load_dataset
from cnnarch.errors import CnnarchError
from cnnarch.train import TrainingInterrupted, fit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="module")
def splits(data_dir: Path) -> tuple[ImageDataset, ImageDataset]:
    return load_dataset("fashion-mnist", data_dir), load_dataset("fashion-mnist", data_dir, False)


class Pairs(Dataset):
    """A user's own dataset: (uint8 tensor (1, H, W), int) items, `classes` named. With `noise`,
    each item draws a random shift from torch's global generator, as a dataset's random
    transform does."""

    def __init__(self, data: ImageDataset, noise: bool = False) -> None:
        self.data, self.noise = data, noise
        self.classes = list(data.classes)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.data.images[i]
        if self.noise:
            image = torch.roll(image, int(torch.randint(-2, 3, ())), dims=-1)
        return image, int(self.data.labels[i])


class FakeDataLike(Dataset):
    """The interface of torchvision.datasets.FakeData (torchvision is not installed here):
    PIL RGB images and a 0-d int64 tensor target, drawn from a generator seeded by the index,
    and a `num_classes` attribute but no `classes`."""

    def __init__(self, size: int, image_size: tuple[int, int, int], num_classes: int) -> None:
        self.size, self.image_size, self.num_classes = size, image_size, num_classes

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Image.Image, torch.Tensor]:
        gen = torch.Generator().manual_seed(index)
        pixels = torch.randint(0, 256, self.image_size, dtype=torch.uint8, generator=gen)
        target = torch.randint(0, self.num_classes, size=(1,), dtype=torch.long, generator=gen)[0]
        return Image.fromarray(pixels.permute(1, 2, 0).numpy(), mode="RGB"), target


def test_a_dataset_of_the_same_images_trains_bit_for_bit_like_the_imagedataset(
    splits: tuple[ImageDataset, ImageDataset],
) -> None:
    # 96 images: the statistics of a Dataset's sample (at most 1000) are those of every image.
    in_memory = fit(tiny_config(Path("/nonexistent"), epochs=2), TinyNet, data=splits)
    streamed = fit(
        tiny_config(Path("/nonexistent"), epochs=2),
        TinyNet,
        data=(Pairs(splits[0]), Pairs(splits[1])),
    )
    assert without_timing(streamed) == without_timing(in_memory)


def test_torchvision_fakedata_trains_a_zoo_model_sized_to_it(tmp_path: Path) -> None:
    train, test = FakeDataLike(48, (3, 32, 32), 4), FakeDataLike(16, (3, 32, 32), 4)
    config = tiny_config(Path("/nonexistent"), tmp_path / "run", model="resnet20", epochs=1)
    history = fit(config, data=(train, test))
    assert len(history) == 1 and history[0]["train_loss"] > 0
    weights = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert weights["conv1.weight"].shape[1] == 3  # in_channels from the images
    assert weights["fc.weight"].shape[0] == 4  # num_classes from `num_classes`


def test_float_images_are_taken_as_the_dataset_normalized_them(
    splits: tuple[ImageDataset, ImageDataset],
) -> None:
    class Normalized(Pairs):
        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            image, label = super().__getitem__(i)
            return (image.float() - 100.0) / 60.0, label

    seen = []

    class Spy(TinyNet):
        def forward(self, x: torch.Tensor) -> Any:
            seen.append(x.detach().clone())
            return super().forward(x)

    fit(
        tiny_config(Path("/x"), epochs=1, augment=False),
        Spy,
        data=(Normalized(splits[0]), Normalized(splits[1])),
    )
    first = (splits[0].images.float() - 100.0) / 60.0
    assert any(torch.equal(x[0], first[i]) for x in seen[:1] for i in range(len(first)))


def test_a_dataloader_with_workers_gives_the_numbers_of_one_process(
    splits: tuple[ImageDataset, ImageDataset],
) -> None:
    config = tiny_config(Path("/x"), epochs=2, batch_size=16)
    noisy = (Pairs(splits[0], noise=True), Pairs(splits[1]))
    here = fit(config, lambda: TinyNet(dropout=0.2), data=noisy)
    loaders = (DataLoader(noisy[0], batch_size=16, num_workers=2), DataLoader(noisy[1]))
    workers = fit(config, lambda: TinyNet(dropout=0.2), data=loaders)
    assert without_timing(workers) == without_timing(here)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_random_dataset_and_transform_resume_bit_exactly(
    splits: tuple[ImageDataset, ImageDataset], tmp_path: Path, workers: int
) -> None:
    def jitter(image: torch.Tensor) -> torch.Tensor:  # draws from torch's and numpy's generators
        flip = bool(torch.rand(()) < 0.5) ^ bool(np.random.rand() < 0.5)
        return image.flip(-1) if flip else image

    def data() -> tuple[Any, Any]:
        train = Pairs(splits[0], noise=True)
        if workers:
            return DataLoader(train, batch_size=16, num_workers=workers), Pairs(splits[1])
        return train, Pairs(splits[1])

    def builder() -> TinyNet:
        return TinyNet(dropout=0.2)

    reference = fit(tiny_config(Path("/x"), tmp_path / "a"), builder, data=data(), transform=jitter)

    def stop(info) -> None:
        if (info.epoch, info.step) == (1, 3):
            os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "b"
    with pytest.raises(TrainingInterrupted):
        fit(tiny_config(Path("/x"), out), builder, data=data(), transform=jitter, on_step=stop)
    resumed = fit(tiny_config(Path("/x"), out, resume=True), builder, data=data(), transform=jitter)
    assert without_timing(resumed) == without_timing(reference)
    no_transform = fit(tiny_config(Path("/x")), builder, data=data())
    assert without_timing(no_transform) != without_timing(reference)  # the hook was applied


def test_the_transform_sees_each_training_image_as_a_tensor(
    splits: tuple[ImageDataset, ImageDataset],
) -> None:
    calls: list[tuple[torch.dtype, tuple[int, ...]]] = []

    def spy(image: torch.Tensor) -> torch.Tensor:
        calls.append((image.dtype, tuple(image.shape)))
        return image

    fit(tiny_config(Path("/x"), epochs=2, threads=1), TinyNet, data=splits, transform=spy)
    # Every training image once an epoch (96 x 2), plus the probe batch timed for compile
    # "auto" (16 images): never a test image.
    assert len(calls) == 2 * 96 + 16
    assert set(calls) == {(torch.uint8, (1, 8, 8))}


class Stream(IterableDataset):
    def __iter__(self):  # type: ignore[override]
        yield torch.zeros(1, 8, 8, dtype=torch.uint8), 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s: s[0], "data must be a pair (train, test)"),
        (lambda s: ([1, 2], s[1]), "the training set must be an ImageDataset, a map-style"),
        (lambda s: (Stream(), s[1]), "iterable-style Stream; the trainer reads items by index"),
        (
            lambda s: (DataLoader(Pairs(s[0]), batch_size=16, collate_fn=lambda b: b), s[1]),
            "has a collate_fn of its own",
        ),
        (
            lambda s: (DataLoader(Pairs(s[0]), batch_size=64), s[1]),
            "the training DataLoader has batch_size 64, the config 16",
        ),
    ],
)
def test_other_data_is_refused_naming_what_is_accepted(
    splits: tuple[ImageDataset, ImageDataset], make: Any, message: str
) -> None:
    with pytest.raises(CnnarchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit(tiny_config(Path("/x"), epochs=1), TinyNet, data=make(splits))


def test_a_transform_must_keep_the_kind_of_the_images(
    splits: tuple[ImageDataset, ImageDataset],
) -> None:
    def to_float(image: torch.Tensor) -> torch.Tensor:  # as v2.ToDtype(torch.float32, scale=True)
        return image.float() / 255

    with pytest.raises(
        CnnarchError, match=r"the transform turned item .* from uint8 into torch\.float32"
    ):
        fit(tiny_config(Path("/x"), epochs=1), TinyNet, data=splits, transform=to_float)


def test_bad_items_are_named(splits: tuple[ImageDataset, ImageDataset]) -> None:
    class WrongLabels(Pairs):
        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            image, label = super().__getitem__(i)
            return image, label + 10 * (i == 5)

    with pytest.raises(CnnarchError, match=r"the training set: labels must lie in \[0, 9\]"):
        fit(tiny_config(Path("/x"), epochs=1), TinyNet, data=(WrongLabels(splits[0]), splits[1]))

    class Strings(Pairs):
        def __getitem__(self, i: int) -> tuple[Any, int]:
            return "image", 0

    with pytest.raises(CnnarchError, match="item 0 of the training set: the image is a str"):
        fit(tiny_config(Path("/x"), epochs=1), TinyNet, data=(Strings(splits[0]), splits[1]))
