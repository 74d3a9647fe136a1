/* Live countdown of VM leases (TTL).
 *
 * Any element with data-expires-at="<ISO-8601>" gets its text kept current once a second:
 * "2 h 05 min 09 s left", "4 min 10 s left", "expired 3 min 02 s ago". The server renders the same text
 * as a fallback, so the page reads right without JavaScript. Elements swapped in by HTMX are
 * picked up on the next tick. No inline script, no eval: safe under a strict CSP.
 */
(function () {
  "use strict";
  if (window.fleetuiLeaseCountdown) { return; }
  window.fleetuiLeaseCountdown = true;

  function span(seconds) {
    var s = Math.floor(Math.abs(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), r = s % 60;
    if (d > 0) { return d + " d " + h + " h " + (m < 10 ? "0" : "") + m + " min"; }
    if (h > 0) { return h + " h " + (m < 10 ? "0" : "") + m + " min " + (r < 10 ? "0" : "") + r + " s"; }
    if (m > 0) { return m + " min " + (r < 10 ? "0" : "") + r + " s"; }
    return r + " s";
  }

  function tick() {
    var now = Date.now();
    var nodes = document.querySelectorAll("[data-expires-at]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var at = Date.parse(el.getAttribute("data-expires-at"));
      if (isNaN(at)) { continue; }
      var left = (at - now) / 1000;
      var text = left > 0 ? span(left) + " left" : "expired " + span(left) + " ago";
      if (el.textContent !== text) { el.textContent = text; }
      el.classList.toggle("lease-expired", left <= 0);
      el.classList.toggle("lease-soon", left > 0 && left <= 3600);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", tick);
  } else {
    tick();
  }
  document.addEventListener("htmx:afterSettle", tick);
  window.setInterval(tick, 1000);
})();
