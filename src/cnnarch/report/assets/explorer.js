// Each form.explorer reads its numbers from the JSON element "data-explorer-<model>".
(function () {
  function at(line, batch, start) { return line[0] + line[1] * (batch - start); }
  function n(value) { return value.toLocaleString("en-US"); }
  function mb(value) {
    return (value / 1e6).toLocaleString("en-US", {maximumFractionDigits: 2}) + " MB";
  }
  function gb(value) {
    return (value / 1e9).toLocaleString("en-US", {maximumFractionDigits: 2}) + " GB";
  }
  function show(out, value) {
    out.dataset.value = String(value);
    var text = n(value);
    if (out.dataset.key !== "total_params" && out.dataset.key !== "total_macs") {
      text += " (" + (value / 1e6).toLocaleString("en-US",
        {minimumFractionDigits: 2, maximumFractionDigits: 2}) + " MB)";
    }
    out.textContent = text;
  }
  // The first largest moment at `batch`: the analyzer's peak, its phase and its breakdown.
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
  // A batch size as typed: a whole number from 1 to `max`, else null (2.5 is not rounded).
  function wholeBatch(text, max) {
    if (!/^\s*[0-9]+\s*$/.test(text)) { return null; }
    var value = Number(text);
    return value >= 1 && value <= max ? value : null;
  }
  // A memory size as `cnnarch plan --memory` takes it (cnnarch.planner.parse_bytes), or a card
  // by name as `--card` finds it (cnnarch.planner.find_card): {memory, budget, name} or
  // {problem}.
  function readMemory(text, budgets) {
    var size = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$/.exec(text);
    if (size) {
      var units = {};
      Object.keys(budgets.units).forEach(function (u) { units[u.toLowerCase()] = budgets.units[u]; });
      var unit = size[2].toLowerCase();
      var hint = "write a number and a unit (24GiB, 40GB) or the exact bytes; GB = 10^9 " +
        "bytes, GiB = 2^30";
      if (unit && !(unit in units)) { return {problem: "unknown unit " + size[2] + ": " + hint}; }
      if (!unit) {
        if (size[1].indexOf(".") >= 0 || Number(size[1]) < budgets.smallest_bare_bytes) {
          return {problem: text.trim() + " has no unit: " + hint};
        }
        return {memory: Number(size[1]), budget: budgets.memory, name: ""};
      }
      return {memory: Math.round(Number(size[1]) * units[unit]), budget: budgets.memory,
              name: ""};
    }
    function squash(s) { return s.toLowerCase().replace(/[^a-z0-9]/g, ""); }
    var wanted = squash(text);
    var keys = Object.keys(budgets.cards);
    var found = keys.filter(function (k) { return squash(k) === wanted; });
    if (!found.length) {
      found = keys.filter(function (k) { return squash(k).indexOf(wanted) === 0; });
    }
    if (found.length !== 1 || !wanted) {
      return {problem: (found.length ? "ambiguous card: " : "unknown card: ") + "choose one of " +
        keys.join(", ") + ", or give the memory (24GiB, 40GB, or bytes)"};
    }
    var card = budgets.cards[found[0]];
    return {memory: card.memory, budget: card, name: card.name};
  }
  // The largest batch whose peak (the planner's PeakLines: the highest of its lines), the bytes
  // held besides the step and the margin fit in `memory`: 0 if not even the smallest does (the
  // planner's answer for inference, and its allocated bound for training).
  function peakOf(lines, batch) {
    return Math.max.apply(null, lines.lines.map(function (line) {
      return line.start + line.per_example * batch;
    }));
  }
  function largestBatch(lines, memory, budget, mode, limit) {
    var room = memory - budget.held[mode];
    function fits(batch) {
      var p = peakOf(lines, batch);
      return p + Math.ceil(p * budget.error) <= room;
    }
    if (!fits(lines.smallest)) { return {batch: 0}; }
    if (fits(limit)) { return {batch: limit, beyond: true, peak: peakOf(lines, limit)}; }
    var best = bisect(fits, lines.smallest, limit);  // the peak grows with the batch
    return {batch: best, peak: peakOf(lines, best)};
  }
  // The largest batch in [low, high] that fits, given that `low` does and that fitting stops
  // once as the batch grows (planner/search.py's `_bisect`).
  function bisect(fits, low, high) {
    if (high <= low || fits(high)) { return Math.max(low, high); }
    while (high - low > 1) {
      var middle = Math.floor((low + high) / 2);
      if (fits(middle)) { low = middle; } else { high = middle; }
    }
    return low;
  }
  var NEVER_FREED = Math.pow(2, 62);  // a storage alive to the step's end
  // A step's storages at `batch` from their flat form (lecture/explorer.py, StepStorages):
  // {persistent: [bytes], step: [[bytes, clock allocated, clock freed]]}.
  function storagesAt(flat, batch) {
    var offset = batch - flat.start, p = flat.persistent, s = flat.step, i, clock = 0;
    var persistent = [], step = [];
    for (i = 0; i < p.length; i += 2) { persistent.push(p[i] + p[i + 1] * offset); }
    for (i = 0; i < s.length; i += 4) {
      clock += s[i + 2];
      step.push([s[i] + s[i + 1] * offset, clock, s[i + 3] < 0 ? NEVER_FREED : clock + s[i + 3]]);
    }
    return {persistent: persistent, step: step};
  }
  // `cnnarch plan`'s search for a training step (planner/search.py, `answer`): nothing fits
  // when the bytes needed whatever the batch or the smallest batch's replay do not; else the
  // largest batch, below the allocated bound, whose storages the caching allocator's replay
  // serves within the memory less the context, the cuDNN bound and the margin.
  function largestTrainingBatch(lines, storages, memory, budget, limit) {
    var cublas = budget.cublas;
    var room = memory - budget.held.training;  // the context, cuDNN bound and cuBLAS workspaces
    var first = lines.smallest;
    function margin(p) { return Math.ceil(p * budget.error); }
    function peakAt(batch) { return batch === first ? storages.first_peak : peakOf(lines, batch); }
    function replayAt(batch) {
      var held = batch === first && storages.first
        ? storagesAt({start: first, persistent: storages.first.persistent,
                      step: storages.first.step}, first)
        : storagesAt(storages, batch);
      var left = Math.max(memory - budget.others - margin(peakAt(batch)), 0);
      return window.cnnarchAllocator.replay(held.persistent.concat(cublas), held.step, left);
    }
    function fits(batch) { return !replayAt(batch).outOfMemory; }
    if (storages.fixed > room || !fits(first)) { return {batch: 0}; }
    var bound = largestBatch(lines, memory, budget, "training", limit);  // no larger one fits
    if (bound.beyond) { return bound; }
    var best = bisect(fits, first, Math.max(bound.batch, first));
    return {batch: best, peak: peakAt(best), reserved: replayAt(best).maxReserved};
  }
  // The flat storages the page packs (deflated JSON in base64), read back.
  function unpack(text) {
    var bytes = Uint8Array.from(atob(text), function (c) { return c.charCodeAt(0); });
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).text().then(JSON.parse);
  }
  // Each layer's exact values at the explorer's setting, on its bar and its diagram box.
  function updateLayers(form, model, batch, precision) {
    var card = form.closest("section");
    var bytesPerValue = model.itemsize[precision];
    var largest = Math.max.apply(null, model.layers.map(function (l) { return l.values; }));
    card.querySelectorAll("text.tick").forEach(function (tick) {
      var bytes = Number(tick.dataset.fraction) * largest * batch * bytesPerValue;
      tick.textContent = bytes < 1e9 ? mb(bytes) : gb(bytes);  // short enough for the axis
    });
    var setting = card.querySelector("output.bars-setting");
    if (setting) { setting.textContent = "batch " + n(batch) + ", " + model.labels[precision]; }
    var saved = model.saved[precision];
    var start = model.training.float32.sgd.start;
    model.layers.forEach(function (layer, index) {
      var bytes = layer.values * batch * bytesPerValue;
      var kept = !saved ? "not traced in " + model.labels[precision]
        : batch < start ? "traced from batch " + start
        : n(at(saved[index], batch, start)) + " bytes";
      var text = layer.name + ": output " + layer.shape + " per image; at batch " + n(batch) +
        " in " + model.labels[precision] + ": output " + n(bytes) + " bytes (" + mb(bytes) +
        "), MACs " + n(layer.macs * batch) + ", saved for backward in training " + kept +
        "; params " + n(layer.params) + "; modules: " + layer.modules;
      card.querySelectorAll('[data-tip][data-path="' + layer.path + '"]').forEach(function (el) {
        el.setAttribute("aria-label", text);
      });
    });
  }
  document.querySelectorAll("form.explorer").forEach(function (form) {
    var source = document.getElementById("data-explorer-" + form.dataset.model);
    if (!source) { return; }
    var model = JSON.parse(source.textContent);
    var inference = form.querySelector("div.inference");
    var training = form.querySelector("dl.training");
    var problem = form.querySelector("output.problem");
    var largest = form.querySelector("output.largest");
    function clear(outputs) {
      outputs.forEach(function (out) { delete out.dataset.value; out.textContent = ""; });
    }
    function update() {
      var trains = form.mode.value === "training";
      var modeName = trains ? "training" : "inference";
      var available = trains ? model.training : model.totals;
      // Autocast is traced in a training step only; pure fp16 is not traced in training.
      Array.from(form.precision.options).forEach(function (option) {
        option.disabled = !(option.value in available);
      });
      if (!(form.precision.value in available)) { form.precision.value = "float32"; }
      var precision = form.precision.value;
      form.optimizer.disabled = !trains;
      inference.hidden = trains;
      training.hidden = !trains;
      var outputs = (trains ? training : inference).querySelectorAll("output");
      clear(outputs);
      clear([largest]);
      var batch = wholeBatch(form.batch.value, model.max_batch);
      form.batch.setAttribute("aria-invalid", batch === null ? "true" : "false");
      problem.textContent = batch === null ? "The batch size is a whole number from 1 to " +
        n(model.max_batch) + (form.batch.value.trim() ? ", not " + form.batch.value.trim() : "") +
        "." : "";
      var step = trains ? model.training[precision][form.optimizer.value] : null;
      var fitLines = trains ? model.fit.training[precision][form.optimizer.value]
        : model.fit.inference[precision];
      var memoryText = form.memory.value.trim();
      var replayed = trains && storages ? storages[precision][form.optimizer.value] : null;
      if (memoryText && !fitLines) {
        largest.textContent = "the inference peak of this model is not a line in the batch " +
          "size; cnnarch plan --inference traces it";
      } else if (memoryText && trains && !storages) {
        largest.textContent = unreadable
          ? "this browser cannot unpack the step's storages (it has no DecompressionStream): " +
            "cnnarch plan gives the answer"
          : "reading the step's storages…";
      } else if (memoryText && trains && !replayed) {
        largest.textContent = "this step's storages differ from batch to batch: cnnarch plan " +
          "traces each batch it looks at";
      } else if (memoryText) {
        var memory = readMemory(memoryText, model.budgets);
        if (memory.problem) {
          largest.textContent = memory.problem;
        } else if (memory.memory <= memory.budget.held[modeName]) {
          largest.textContent = "the CUDA context and workspaces alone take " +
            gb(memory.budget.held[modeName]) + " of " + gb(memory.memory);
        } else {
          // the answer depends on the setting and the memory, not on the batch size typed:
          // kept, so that typing a batch does not replay the allocator again
          var key = [modeName, precision, form.optimizer.value, memory.memory, memory.name]
            .join("|");
          if (!(key in answers)) {
            answers[key] = trains
              ? largestTrainingBatch(fitLines, replayed, memory.memory, memory.budget,
                                     model.budgets.search_limit)
              : largestBatch(fitLines, memory.memory, memory.budget, modeName,
                             model.budgets.search_limit);
          }
          var found = answers[key];
          largest.dataset.value = String(found.batch);
          var on = memory.name ? memory.name + " (" + gb(memory.memory) + " as CUDA reports it)"
            : gb(memory.memory);
          var held = found.reserved === undefined ? ""
            : ", " + gb(found.reserved) + " reserved by the caching allocator";
          largest.textContent = found.batch === 0
            ? "nothing fits on " + on + ": not even batch " + fitLines.smallest
            : (found.beyond ? "more than " : "") + "largest batch that fits on " + on + ": " +
              n(found.batch) + " (peak " + gb(found.peak) + " allocated" + held + ", " +
              modeName + ", " + model.labels[precision] + (trains ? ", " +
              form.optimizer.selectedOptions[0].textContent : "") + ")";
        }
      }
      if (batch === null) { return; }
      updateLayers(form, model, batch, precision);
      if (!trains) {
        var shown = model.totals[precision];
        outputs.forEach(function (out) {
          var line = shown[out.dataset.key];
          out.closest("div").hidden = !line;
          if (line) { show(out, at(line, batch, 1)); }
        });
        return;
      }
      if (batch < step.start) {
        outputs[0].textContent = "from batch " + step.start + " (batch-norm in training " +
          "needs more than one value per channel)";
        return;
      }
      var top = peak(step, batch);
      outputs.forEach(function (out) {
        if (out.dataset.key === "training_peak_bytes") { show(out, top.total); }
        else if (out.dataset.key === "peak_phase") {
          out.dataset.value = top.phase;
          out.textContent = top.phase === "step" ? "optimizer step" : top.phase + " pass";
        } else {  // a part this step does not have (weight copies without autocast) is left out
          var part = top.parts[model.categories.indexOf(out.dataset.part)];
          out.closest("div").hidden = part === 0;
          show(out, part);
        }
      });
    }
    var storages = null;  // what the training replay needs, once read
    var unreadable = false;  // the browser could not unpack them
    var answers = {};  // the largest batch, by setting and memory
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    update();
    unpack(model.fit.storages).then(function (read) {
      storages = read;
      form.dataset.storages = "read";
      update();
    }, function () {  // a browser without DecompressionStream
      unreadable = true;
      update();
    });
  });
})();
