// The console's only script: pages marked data-refresh update their
// content in place (no full reload), and "select all" on the dead letters.
(function () {
  "use strict";
  var main = document.querySelector("main[data-refresh]");
  if (main) {
    var every = parseInt(main.getAttribute("data-refresh"), 10) * 1000;
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(location.href, { headers: { "X-Fragment": "1" }, credentials: "same-origin" })
        .then(function (r) { if (r.ok && !r.redirected) { return r.text(); } throw new Error(r.status); })
        .then(function (html) { main.innerHTML = html; main.setAttribute("data-updated", new Date().toISOString()); })
        .catch(function () {})
        .then(function () { busy = false; });
    }, every);
  }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.id === "select-all") {
      document.querySelectorAll("input[name=seq]").forEach(function (c) { c.checked = e.target.checked; });
    }
  });
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
})();
