// Copy buttons for values shown once (a new API token). Delegated from the document so it also
// works for content HTMX swaps in later; no inline script, so a strict CSP holds.
(function () {
  "use strict";

  function setStatus(id, text) {
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    if (status) status.textContent = text;
  }

  function fallbackCopy(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch (e) {
      return false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var id = button.getAttribute("data-copy-target");
    var input = document.getElementById(id);
    if (!input) return;
    event.preventDefault();
    var done = function () { setStatus(id, "Copied."); button.textContent = "Copied"; };
    var failed = function () {
      input.focus();
      input.select();
      setStatus(id, "Press Ctrl+C (⌘C) to copy the selected token.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        if (fallbackCopy(input)) done(); else failed();
      });
    } else if (fallbackCopy(input)) {
      done();
    } else {
      failed();
    }
  });
})();
