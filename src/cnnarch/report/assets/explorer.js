// Each form.explorer reads its numbers from the JSON element "data-explorer-<model>".
(function () {
  function at(line, batch, start) { return line[0] + line[1] * (batch - start); }
  function show(out, value) {
    out.dataset.value = String(value);
    var text = value.toLocaleString("en-US");
    if (out.dataset.key !== "total_params" && out.dataset.key !== "total_macs") {
      text += " (" + (value / 1e6).toLocaleString("en-US",
        {minimumFractionDigits: 2, maximumFractionDigits: 2}) + " MB)";
    }
    out.textContent = text;
  }
  function peak(training, batch) {
    var best = null;
    training.moments.forEach(function (moment) {
      var parts = moment[1].map(function (line) { return at(line, batch, training.start); });
      var total = parts.reduce(function (a, b) { return a + b; }, 0);
      if (best === null || total > best.total) {
        best = {total: total, phase: moment[0], parts: parts};
      }
    });
    return best;
  }
  var itemsize = {float32: 4, bfloat16: 2, float16: 2};
  function n(value) { return value.toLocaleString("en-US"); }
  function mb(value) {
    return (value / 1e6).toLocaleString("en-US", {maximumFractionDigits: 2}) + " MB";
  }
  // Each layer's exact values at the explorer's setting, on its bar and its diagram box.
  function updateLayers(form, model, batch, precision) {
    var card = form.closest("section");
    var step = model.training[precision].sgd;
    var largest = Math.max.apply(null, model.layers.map(function (l) { return l.values; }));
    card.querySelectorAll("text.tick").forEach(function (tick) {
      var bytes = Number(tick.dataset.fraction) * largest * batch * itemsize[precision];
      tick.textContent = mb(bytes);
    });
    card.querySelector("output.bars-setting").textContent = "batch " + batch + ", " + precision;
    model.layers.forEach(function (layer, index) {
      var bytes = layer.values * batch * itemsize[precision];
      var saved = batch < step.start ? "traced from batch " + step.start
        : n(at(model.saved[precision][index], batch, step.start)) + " bytes";
      var text = layer.name + ": output " + layer.shape + " per image; at batch " + batch +
        " in " + precision + ": output " + n(bytes) + " bytes (" + mb(bytes) + "), MACs " +
        n(layer.macs * batch) + ", saved for backward in training " + saved + "; params " +
        n(layer.params) + "; modules: " + layer.modules;
      card.querySelectorAll('[data-tip][data-path="' + layer.path + '"]').forEach(function (el) {
        el.setAttribute("aria-label", text);
      });
    });
  }
  document.querySelectorAll("form.explorer").forEach(function (form) {
    var source = document.getElementById("data-explorer-" + form.dataset.model);
    if (!source) { return; }
    var model = JSON.parse(source.textContent);
    var inference = form.querySelector("dl.inference");
    var training = form.querySelector("dl.training");
    function update() {
      var batch = Math.round(Number(form.batch.value));
      var valid = batch >= 1 && batch <= 1024;
      var trains = form.mode.value === "training";
      if (valid) { updateLayers(form, model, batch, form.precision.value); }
      form.batch.setAttribute("aria-invalid", valid ? "false" : "true");
      form.optimizer.disabled = !trains;
      inference.hidden = trains;
      training.hidden = !trains;
      var outputs = (trains ? training : inference).querySelectorAll("output");
      outputs.forEach(function (out) { delete out.dataset.value; out.textContent = ""; });
      if (!valid) {
        outputs[0].textContent = "batch 1 to 1024";
        return;
      }
      if (!trains) {
        var shown = model.totals[form.precision.value];
        outputs.forEach(function (out) {
          var line = shown[out.dataset.key];
          out.closest("div").hidden = !line;
          if (line) { show(out, at(line, batch, 1)); }
        });
        return;
      }
      var step = model.training[form.precision.value][form.optimizer.value];
      if (batch < step.start) {
        outputs[0].textContent = "from batch " + step.start + " (batch-norm in training " +
          "needs more than one value per channel)";
        return;
      }
      var found = peak(step, batch);
      outputs.forEach(function (out) {
        if (out.dataset.key === "training_peak_bytes") { show(out, found.total); }
        else if (out.dataset.key === "peak_phase") {
          out.dataset.value = found.phase;
          out.textContent = found.phase === "step" ? "optimizer step" : found.phase + " pass";
        } else {
          show(out, found.parts[model.categories.indexOf(out.dataset.part)]);
        }
      });
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    update();
  });
})();
