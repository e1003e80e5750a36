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
  function show(event) {
    var el = event.target.closest && event.target.closest("[data-tip]");
    if (!el) { return; }
    current = el;
    tip.textContent = el.getAttribute("aria-label");
    tip.hidden = false;
    place();
  }
  function hide() { current = null; tip.hidden = true; }
  document.addEventListener("mouseover", show);
  document.addEventListener("focusin", show);
  document.addEventListener("mouseout", hide);
  document.addEventListener("focusout", hide);
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
})();
