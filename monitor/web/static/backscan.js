// The artist portal's back-scan line: while a back-scan runs, ask /me/backscan how far it
// got about once a second and show it; stop when it is done. The page works without it
// (a reload shows the same line).
"use strict";
(function () {
  const line = document.getElementById("backscan");
  if (!line || !line.dataset.running) return;
  const DELAY_MS = 1000;

  async function poll() {
    try {
      const resp = await fetch("/me/backscan", { credentials: "same-origin" });
      if (!resp.ok) return;
      const status = await resp.json();
      if (status.text) line.textContent = status.text;
      if (status.running) {
        setTimeout(poll, DELAY_MS);
      } else {
        delete line.dataset.running;
      }
    } catch (err) {
      setTimeout(poll, DELAY_MS * 5); // the server restarting: try again, more slowly
    }
  }
  setTimeout(poll, DELAY_MS);
})();
