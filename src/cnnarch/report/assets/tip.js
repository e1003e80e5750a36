(function () {
  var tip = document.createElement("div");
  tip.id = "tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  document.body.appendChild(tip);
  var current = null;
  function place() {
    var box = current.getBoundingClientRect();
    var left = Math.min(Math.max(4, box.left), window.innerWidth - tip.offsetWidth - 4);
    var top = box.bottom + 6;
    if (top + tip.offsetHeight > window.innerHeight) { top = box.top - tip.offsetHeight - 6; }
    tip.style.left = left + "px";
    tip.style.top = Math.max(4, top) + "px";
  }
  function showFor(el) {
    current = el;
    tip.textContent = el.getAttribute("aria-label");
    tip.hidden = false;
    place();
  }
  function show(event) {
    var el = event.target.closest && event.target.closest("[data-tip]");
    if (el) { showFor(el); }
  }
  function hide() { current = null; tip.hidden = true; }
  // A part of a picture with a hover text of its own (an SVG <title>) gets the same detail box
  // as the rest, so that a tap or the keyboard reaches it too.
  document.querySelectorAll("svg title").forEach(function (title) {
    var el = title.parentElement;
    if (el.tagName.toLowerCase() === "svg" || el.hasAttribute("data-tip")) { return; }
    if (!el.hasAttribute("aria-label")) { el.setAttribute("aria-label", title.textContent); }
    if (el.tagName.toLowerCase() === "a") { return; }  // a link: focusable, its label read
    el.setAttribute("data-tip", "");
    el.setAttribute("role", "img");
    el.tabIndex = -1;
  });
  document.addEventListener("mouseover", show);
  document.addEventListener("focusin", show);
  document.addEventListener("mouseout", hide);
  document.addEventListener("focusout", hide);
  // A tap (or a click) shows the detail and keeps it until the next tap elsewhere. A finger
  // that scrolls the page ends in pointercancel, not pointerup: only a tap shows it.
  document.addEventListener("pointerup", function (event) {
    var el = event.target.closest && event.target.closest("[data-tip]");
    if (!el) { return; }
    el.focus({preventScroll: true});
    showFor(el);
  });
  // Focus scrolls an element into view: the box follows it.
  window.addEventListener("scroll", function () { if (current) { place(); } }, {passive: true});
  document.querySelectorAll("svg").forEach(function (svg) {
    var items = Array.from(svg.querySelectorAll("[data-tip]"));
    if (!items.length) { return; }
    items.forEach(function (el) {
      var title = el.querySelector("title");
      if (title) { title.remove(); }  // the box above replaces the browser's own tooltip
    });
    items[0].tabIndex = 0;
    svg.addEventListener("keydown", function (event) {
      var moves = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1};
      var index = items.indexOf(event.target);
      if (!(event.key in moves) || index < 0) { return; }
      var next = items[Math.min(items.length - 1, Math.max(0, index + moves[event.key]))];
      event.target.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
      event.preventDefault();
    });
  });
  // A figure wider than its box (a diagram on a phone) shows its cue: it scrolls sideways.
  function markOverflow() {
    document.querySelectorAll("figure .diagram-box").forEach(function (box) {
      box.closest("figure").classList.toggle("overflows", box.scrollWidth > box.clientWidth + 1);
    });
  }
  markOverflow();
  window.addEventListener("resize", markOverflow);
})();
