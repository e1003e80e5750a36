"""The explorer on each model card: pick a batch size and a precision, read the totals that
`cnnarch summary MODEL --batch B --dtype D` prints, computed in the page without a server.

The page can only compute what is affine in the batch size: value(B) = value(1) + step x (B - 1).
Each quantity's value(1) and step come from the analyzer at batch 1 and 2, and the rule is
checked against the analyzer at `CHECK_BATCHES` (the largest batch the page offers); a
quantity that fails the check is left out for that model. Training memory is not offered: its
peak is the largest of several moments of the step (forward, backward, optimizer step), each
growing at its own rate with the batch, so it is not affine (`cnnarch summary --train` computes it).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cnnarch.analysis.loading import DTYPES

PRECISIONS = ("float32", "bfloat16", "float16")
MAX_BATCH = 1024
CHECK_BATCHES = (MAX_BATCH,)
# (field of `cnnarch summary --format json`, label); bytes are shown in bytes and decimal MB.
QUANTITIES = (
    ("total_params", "parameters (all)"),
    ("total_macs", "MACs"),
    ("input_bytes", "input (bytes)"),
    ("param_bytes", "parameters (bytes)"),
    ("activation_bytes", "forward activations (bytes)"),
    ("inference_peak_bytes", "inference peak (bytes)"),
)


@dataclass(frozen=True)
class Explorer:
    """A model's explorer: per precision, each quantity's [value at batch 1, step per image]."""

    model: str
    lines: dict[str, dict[str, list[int]]]


def affine_totals(analyze: Callable[..., Any], name: str) -> dict[str, dict[str, list[int]]]:
    """{precision: {field: [value at batch 1, step per image]}} for the fields that the
    analyzer confirms are affine in the batch size."""
    found: dict[str, dict[str, list[int]]] = {}
    for precision in PRECISIONS:
        dtype = DTYPES[precision]
        one, two = (analyze(name, batch_size=b, dtype=dtype) for b in (1, 2))
        lines = {
            key: [getattr(one, key), getattr(two, key) - getattr(one, key)] for key, _ in QUANTITIES
        }
        for batch in CHECK_BATCHES:
            at = analyze(name, batch_size=batch, dtype=dtype)
            lines = {
                key: (start, step)
                for key, (start, step) in lines.items()
                if getattr(at, key) == start + step * (batch - 1)
            }
        found[precision] = {key: [start, step] for key, (start, step) in lines.items()}
    return found


def explorer_html(name: str) -> str:
    """The controls and the table of one model; `EXPLORER_JS` fills the values."""
    options = "".join(f'<option value="{p}">{p}</option>' for p in PRECISIONS)
    rows = "".join(
        f"<div><dt>{html.escape(label)}</dt>"
        f'<dd><output data-key="{key}" aria-live="polite"></output></dd></div>'
        for key, label in QUANTITIES
    )
    return (
        f'<form class="explorer" data-model="{html.escape(name)}" aria-label="explore {name}">'
        f'<label>batch size <input type="number" name="batch" min="1" max="{MAX_BATCH}" '
        'value="1" step="1"></label> '
        f'<label>precision <select name="precision">{options}</select></label>'
        f"<dl>{rows}</dl></form>"
    )


def explorer_data_html(explorers: Sequence[Explorer]) -> str:
    """The embedded numbers (JSON), read by `EXPLORER_JS`."""
    data = {e.model: e.lines for e in explorers}
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="explorer-data">{text}</script>'


# value(B) = value(1) + step * (B - 1): integers below 2^53, exact in JavaScript numbers.
EXPLORER_JS = """
(function () {
  var source = document.getElementById("explorer-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  document.querySelectorAll("form.explorer").forEach(function (form) {
    var lines = data[form.dataset.model];
    function update() {
      var batch = Math.round(Number(form.batch.value));
      var valid = batch >= 1 && batch <= 1024;
      form.batch.setAttribute("aria-invalid", valid ? "false" : "true");
      var shown = lines[form.precision.value];
      form.querySelectorAll("output").forEach(function (out) {
        var line = shown[out.dataset.key];
        var row = out.closest("div");
        row.hidden = !line;
        if (!line || !valid) { out.textContent = valid ? "" : "batch 1 to 1024"; return; }
        var value = line[0] + line[1] * (batch - 1);
        out.dataset.value = String(value);
        var text = value.toLocaleString("en-US");
        if (out.dataset.key.endsWith("_bytes")) {
          text += " (" + (value / 1e6).toLocaleString("en-US",
            {minimumFractionDigits: 2, maximumFractionDigits: 2}) + " MB)";
        }
        out.textContent = text;
      });
    }
    form.addEventListener("input", update);
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    update();
  });
})();
"""
