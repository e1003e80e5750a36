"""How every number of the report is counted and every claim judged, said once."""

from __future__ import annotations

from cnnarch.experiments.degradation import NOISE_FACTOR
from cnnarch.lecture.claims import (
    CANNOT_BE_COMPUTED,
    COMPUTED,
    DEPENDS,
    DOES_NOT_HOLD,
    HOLDS,
    MEASURED,
    PUBLISHED,
    WITHIN_NOISE,
)
from cnnarch.lecture.figures import AGREEMENTS, SIGN_CONVENTION
from cnnarch.lecture.topic import Topic
from cnnarch.report.document import Bullets, Paragraph, Section


def build(batch_size: int) -> Topic:
    """The definitions section.

    Args:
        batch_size: the batch of the report's training numbers.
    """
    counted = Bullets(
        (
            "Parameters (params): every `nn.Parameter`, biases and batch-norm scales included. "
            "A column or figure of weights alone (the slides' and GoogLeNet's Table 1's count) "
            "says 'weights'. 'All' includes the training-only heads (GoogLeNet's two auxiliary "
            "classifiers, Inception-v3's one); 'at inference' leaves them out. Every percentage "
            "of parameters names the total it divides by.",
            "MACs: multiply-accumulates of conv and linear layers for one image (the papers' "
            "'multiply-adds', torchvision's 'GFLOPS').",
            "Forward activations: every value the forward pass allocates for one image, the "
            "input excluded (in-place ReLUs allocate nothing). Inference peak: the most bytes "
            "alive at once in that pass, parameters included.",
            "A layer's memory, as the lecture counts it: the values in the layer's output for "
            "one image. The slides' totals add the input; the report says so where it does.",
            f"Training peak: the most bytes alive at once during one training step at batch "
            f"{batch_size} with SGD and momentum = what is alive throughout (parameters, "
            "momentum, buffers, the input) + the saved activations, gradients and temporaries "
            "alive at the peak.",
            "Variant: the `paper` variant unless another is named beside the number (the "
            "comparison uses torchvision's variants, the ones its accuracy belongs to).",
            "Units: float32 (4 bytes a value); 1 MB = 10⁶ bytes; K = 10³, M = 10⁶, G = 10⁹ "
            "everywhere, except in GoogLeNet's Table 1, which prints parameters with K = 1024: "
            "its columns say so, and the computed weights beside them use the same K.",
            SIGN_CONVENTION,
        )
    )
    judged = Bullets(
        (
            f"Verdicts: '{HOLDS}'; '{WITHIN_NOISE}' (a measured difference smaller than "
            f"{NOISE_FACTOR:g} times its uncertainty: the larger of its spread across seeds, "
            "std / √seeds, and the sampling error of an error rate measured on n images, "
            "√(p(1 − p) / n)); "
            f"'{DEPENDS}' (a comparative claim that holds on some of the measures the page shows "
            f"and not on others; its evidence lists each); '{DOES_NOT_HOLD}' (always with the "
            f"cause the code finds); '{CANNOT_BE_COMPUTED}' (never counted as holding). Each "
            "claim has one verdict and one count in the tally.",
            f"Evidence: '{COMPUTED}' (from the architecture, by the analyzer), '{MEASURED}' (by "
            f"training runs of this package), '{PUBLISHED}' (a figure others published, such "
            "as the accuracy of trained weights).",
            "A published figure agrees with the computed value when it is: "
            + "; ".join(f"{a.name} ({a.meaning})" for a in AGREEMENTS if a.holds)
            + ". Otherwise it "
            + "; or it ".join(f"{a.name}: {a.meaning}" for a in AGREEMENTS if not a.holds)
            + ". Trailing zeros of a whole printed number are not significant ('380K' is read "
            "to 10K).",
        )
    )
    section = Section("definitions", "How the numbers are counted and the claims judged")
    section.add(counted, Paragraph("How a claim is judged:"), judged)
    return Topic(section)
