// Keyboard shortcuts for the triage queue; every action also works without them.
// j/k move, o (or Enter) opens, x selects for bulk, c/d/e pick a decision and focus the
// reason (Enter then submits that decision), Escape leaves the reason field.
"use strict";
(function () {
  const queue = document.getElementById("queue");
  if (!queue) return;
  const items = Array.from(queue.querySelectorAll("li.item"));
  if (!items.length) return;
  const tab = new URLSearchParams(location.search).get("tab") || "needs_review";
  const KEY = "stylewatch.queue.index:" + tab;
  const DECISIONS = { c: "confirm", d: "dismiss", e: "escalate" };
  let index = Math.min(Number(sessionStorage.getItem(KEY) || 0), items.length - 1);

  function select(i, focus = true) {
    index = Math.max(0, Math.min(i, items.length - 1));
    items.forEach((el, n) => el.classList.toggle("selected", n === index));
    if (focus) items[index].focus({ preventScroll: true });
    items[index].scrollIntoView({ block: "nearest" });
    sessionStorage.setItem(KEY, String(index));
  }

  function choose(decision) {
    const form = items[index].querySelector("form.decide");
    const reason = form && form.querySelector("input.reason");
    if (!reason || reason.disabled) return;
    form.dataset.decision = decision;
    form.querySelectorAll("button[name=decision]").forEach((b) =>
      b.classList.toggle("chosen", b.value === decision));
    reason.focus();
  }

  queue.addEventListener("keydown", (event) => {
    const input = event.target.closest("input.reason");
    if (!input || event.key !== "Enter") {
      if (input && event.key === "Escape") { input.blur(); items[index].focus(); }
      return;
    }
    const form = input.form;
    const decision = form.dataset.decision;
    if (!decision || !input.value.trim()) return;
    event.preventDefault();
    form.requestSubmit(form.querySelector(`button[value=${decision}]`));
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, select, textarea, button")) return;
    const key = event.key;
    if (key === "j") select(index + 1);
    else if (key === "k") select(index - 1);
    else if (key === "o" || key === "Enter") items[index].querySelector("a.open").click();
    else if (key === "x") {
      const box = items[index].querySelector("input[type=checkbox]");
      box.checked = !box.checked;
    } else if (DECISIONS[key]) choose(DECISIONS[key]);
    else return;
    event.preventDefault();
  });

  items.forEach((el, n) => el.addEventListener("click", (event) =>
    select(n, !event.target.closest("input, button, select, a"))));
  select(index);
})();
