/* Bulk selection on the VM list (no inline code, so the Content-Security-Policy holds).
   The row checkboxes belong to #bulk-form through their form="" attribute; without JavaScript they
   still post. This keeps ticks across the table's live refreshes, ticks a whole page at once, and
   shows how many are ticked. */
(function () {
  "use strict";

  var kept = null;

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("input.bulk-vm"));
  }

  function update() {
    var all = boxes();
    var ticked = all.filter(function (b) { return b.checked; }).length;
    var count = document.getElementById("bulk-count");
    if (count) count.textContent = ticked ? ticked + " ticked" : "ticked";
    var page = document.getElementById("bulk-page");
    if (page) {
      page.checked = all.length > 0 && ticked === all.length;
      page.indeterminate = ticked > 0 && ticked < all.length;
    }
  }

  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (!el || !el.classList) return;
    if (el.id === "bulk-page") {
      boxes().forEach(function (b) { b.checked = el.checked; });
      update();
    } else if (el.classList.contains("bulk-vm")) {
      update();
    }
  });

  /* The table is swapped every few seconds: remember the ticks before, put them back after. */
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (target && target.id === "vm-table") {
      kept = {};
      boxes().forEach(function (b) { if (b.checked) kept[b.value] = true; });
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (kept) {
      boxes().forEach(function (b) { if (kept[b.value]) b.checked = true; });
      kept = null;
    }
    update();
  });
  document.addEventListener("DOMContentLoaded", update);
})();
