"""Common GPUs by name, at the memory their CUDA runtime reports.

A card sold as "24 GB" does not give a program 24 GB, nor 24 GiB: the driver keeps part of the
memory (more with ECC on), and what is left is what `torch.cuda.get_device_properties(0)
.total_memory` reports (CUDA's `totalGlobalMem`; `torch.cuda.mem_get_info()[1]` reports the
same figure). The planner plans against that figure. It moves by some tens of MB between
driver versions (a GeForce RTX 4090 has been reported at 23.68, 23.65, 23.64 and 23.52 GiB),
so each card below gives one reported figure and where it was reported; for your own card pass
`--memory` the bytes `torch.cuda.get_device_properties(0).total_memory` prints.

Each figure's source is one of:
- `deviceQuery` (CUDA's sample): its "Total amount of global memory" in bytes, exact;
- PyTorch's out-of-memory message, "GPU 0 has a total capacity of X GiB": X is rounded to
  0.01 GiB, so the figure used is the smallest that prints as X, (X - 0.005) GiB;
- derived, where no reported figure was found: how is said beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnarch.errors import CnnarchError

GIB = 2**30


def low_end_of_gib(printed: float) -> int:
    """The smallest byte count PyTorch's message prints as `printed` GiB (two decimals)."""
    return math.ceil((printed - 0.005) * GIB)


@dataclass(frozen=True)
class Card:
    """One GPU as the planner sees it.

    key: its name for `--card`; name: as the driver names it; sold_as: the memory it is sold
    with; total_memory: bytes the CUDA runtime reports (`total_memory`); generation: its GPU
    generation (for the CUDA context, `cnnarch.planner.device`); source: where `total_memory`
    comes from; derived: True when no reported figure was found and `source` says how it was
    derived.
    """

    key: str
    name: str
    sold_as: str
    total_memory: int
    generation: str
    source: str
    derived: bool = False


# The H100's reported total against its 80 GiB, the ratio used to derive the H200's.
_H100_TOTAL = low_end_of_gib(79.11)
# nvidia-smi's total against CUDA's on an L4 (23,034 MiB against 22.03 GiB): the gap used to
# derive the A10G's from its nvidia-smi total (23,028 MiB), both 24 GB GDDR6 cards.
_L4_GAP = 23034 * 2**20 - low_end_of_gib(22.03)

CARDS = {
    card.key: card
    for card in (
        Card(
            "t4",
            "Tesla T4",
            "16 GB",
            low_end_of_gib(14.75),
            "turing",
            "PyTorch OOM message on a Google Colab T4, 'total capacity of 14.75 GiB' "
            "(github.com/hpcaitech/Open-Sora/issues/697)",
        ),
        Card(
            "l4",
            "NVIDIA L4",
            "24 GB",
            low_end_of_gib(22.03),
            "ada",
            "PyTorch OOM message on an L4, 'total capacity of 22.03 GiB' "
            "(github.com/ArcInstitute/evo2/issues/190)",
        ),
        Card(
            "a10g",
            "NVIDIA A10G",
            "24 GB",
            23028 * 2**20 - _L4_GAP,
            "ampere",
            "derived: nvidia-smi's total for the A10 class, 23,028 MiB (github.com/modal-labs/"
            "modal-client/pull/2797), less the gap between nvidia-smi's total and CUDA's "
            "measured on the L4 (23,034 MiB against 22.03 GiB)",
            derived=True,
        ),
        Card(
            "rtx3090",
            "NVIDIA GeForce RTX 3090",
            "24 GB",
            low_end_of_gib(23.70),
            "ampere",
            "PyTorch OOM message on an RTX 3090, '23.70 GiB total capacity' "
            "(github.com/Lightning-AI/lit-llama/issues/137)",
        ),
        Card(
            "rtx4090",
            "NVIDIA GeForce RTX 4090",
            "24 GB",
            low_end_of_gib(23.52),
            "ada",
            "PyTorch OOM message on an RTX 4090, 'total capacity of 23.52 GiB' "
            "(github.com/Soul-AILab/SoulX-FlashTalk/issues/5; the lowest of the four "
            "figures found, 23.52-23.68 GiB)",
        ),
        Card(
            "a100-40gb",
            "NVIDIA A100-SXM4-40GB",
            "40 GB",
            42_298_834_944,
            "ampere",
            "deviceQuery on an A100-SXM4-40GB, '40339 MBytes (42298834944 bytes)' "
            "(github.com/bottlerocket-os/bottlerocket/pull/3873)",
        ),
        Card(
            "a100-80gb",
            "NVIDIA A100 80GB",
            "80 GB",
            low_end_of_gib(79.14),
            "ampere",
            "PyTorch OOM message on an A100 80GB, 'total capacity of 79.14 GiB' "
            "(github.com/lianqi1008/Control-GIC/issues/6; others report 79.25)",
        ),
        Card(
            "h100-80gb",
            "NVIDIA H100 80GB HBM3",
            "80 GB",
            _H100_TOTAL,
            "hopper",
            "PyTorch OOM message on an H100, 'total capacity of 79.11 GiB' "
            "(github.com/vllm-project/vllm/issues/27508)",
        ),
        Card(
            "h200",
            "NVIDIA H200",
            "141 GB",
            141 * _H100_TOTAL // 80,
            "hopper",
            "derived: NVIDIA's 141 GB (read as GiB, as the 80 GB of an H100 are) times the "
            "H100's reported share of its 80 GiB (79.11 GiB)",
            derived=True,
        ),
    )
}


def find_card(name: str) -> Card:
    """The card called `name` ("rtx4090", "RTX 4090", "a100-80gb", "H100"); case, spaces,
    dashes and underscores do not matter, and a prefix naming one card is enough."""
    wanted = _squash(name)
    exact = [card for key, card in CARDS.items() if _squash(key) == wanted]
    matches = exact or [card for key, card in CARDS.items() if _squash(key).startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(CARDS)
    if not matches:
        raise CnnarchError(
            f"unknown card {name!r}: choose one of {known}, or give --memory in bytes "
            "(torch.cuda.get_device_properties(0).total_memory)"
        )
    raise CnnarchError(
        f"card {name!r} is ambiguous ({', '.join(c.key for c in matches)}): choose one of {known}"
    )


def _squash(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())
