/* The header search box (templates/search/_search_box.html): "/" focuses it from anywhere but a field;
   HTMX fills the results as you type; Enter opens the first result, or asks the server for the best
   match when the results shown are not for the text typed yet; Escape closes; arrows move through the
   results. Without JavaScript the box is a plain GET form to the results page. */
(function () {
  "use strict";

  function input() { return document.getElementById("search-input"); }
  function results() { return document.getElementById("search-results"); }

  function typing(el) {
    if (!el) return false;
    var tag = (el.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
  }

  function hits() {
    var box = results();
    return box ? Array.prototype.slice.call(box.querySelectorAll("a.search-hit")) : [];
  }

  function fresh() {
    var box = results(), field = input();
    var dropdown = box && box.querySelector(".search-dropdown");
    if (!dropdown || !field) return false;
    return dropdown.getAttribute("data-q") === field.value.trim().split(/\s+/).join(" ");
  }

  function close() {
    var box = results();
    if (box) box.innerHTML = "";
  }

  document.addEventListener("keydown", function (evt) {
    var field = input();
    if (!field) return;
    if (evt.key === "/" && !evt.ctrlKey && !evt.metaKey && !evt.altKey && !typing(evt.target)) {
      evt.preventDefault();
      field.focus();
      field.select();
      return;
    }
    var inBox = evt.target === field || (results() && results().contains(evt.target));
    if (!inBox) return;
    if (evt.key === "Escape") {
      close();
      field.blur();
    } else if (evt.key === "Enter" && evt.target === field) {
      evt.preventDefault();
      var text = field.value.trim();
      if (!text) return;
      var first = fresh() ? hits()[0] : null;
      if (first) {
        window.location.assign(first.getAttribute("href"));
      } else {
        var form = document.getElementById("search-form");
        window.location.assign(form.getAttribute("action") + "?jump=on&q=" + encodeURIComponent(text));
      }
    } else if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
      var list = hits();
      if (!list.length) return;
      evt.preventDefault();
      var at = list.indexOf(document.activeElement);
      var next = evt.key === "ArrowDown" ? at + 1 : at - 1;
      if (next < 0) { field.focus(); return; }
      list[Math.min(next, list.length - 1)].focus();
    }
  });

  document.addEventListener("click", function (evt) {
    var form = document.getElementById("search-form");
    if (form && !form.contains(evt.target)) close();
  });
})();
