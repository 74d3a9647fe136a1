/* FleetUI's little JavaScript. Loaded from a file (no inline scripts, no eval), so a strict
   Content-Security-Policy holds. Pages work without it; it only keeps them current. */
(function () {
  "use strict";

  function ageText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h";
    return Math.floor(seconds / 86400) + " d";
  }

  /* "as of 12 s ago" keeps counting between polls. */
  function refreshAges() {
    var now = Date.now();
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(at)) el.textContent = el.getAttribute("data-ago") + ageText((now - at) / 1000) + " ago";
    });
  }
  setInterval(refreshAges, 1000);

  /* A banner when live updates cannot reach the server, gone again once they can. */
  var failures = 0;
  function banner(show) {
    var el = document.getElementById("conn-banner");
    if (el) el.classList.toggle("hidden", !show);
  }
  document.addEventListener("htmx:sendError", function () { failures += 1; if (failures >= 2) banner(true); });
  document.addEventListener("htmx:responseError", function (evt) {
    if (evt.detail && evt.detail.xhr && evt.detail.xhr.status >= 500) { failures += 1; if (failures >= 2) banner(true); }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (evt.detail && evt.detail.successful) { failures = 0; banner(false); }
  });

  /* A live part whose session ran out gets the login page back (the XHR followed the redirect):
     go to the login page instead of drawing it inside the part. */
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail && evt.detail.xhr;
    if (xhr && xhr.responseURL && xhr.responseURL.indexOf("/accounts/login/") !== -1) {
      evt.detail.shouldSwap = false;
      window.location.href = xhr.responseURL.split("?")[0] + "?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    }
  });

  /* Plain forms that ask first (htmx forms use hx-confirm). */
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (form && form.hasAttribute && form.hasAttribute("data-confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
      evt.preventDefault();
    }
  });

  /* Filters that submit themselves when changed (the Filter button stays for no-JS use). */
  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (el && el.form && el.form.hasAttribute("data-autosubmit") && el.tagName === "SELECT") {
      el.form.requestSubmit();
    }
  });
})();
