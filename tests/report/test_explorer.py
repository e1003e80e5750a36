"""The explorer's numbers: only totals the analyzer confirms are affine in the batch size are
embedded (the browser test compares the page with the CLI)."""

from types import SimpleNamespace

from cnnarch.report.explorer import QUANTITIES, affine_totals


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
