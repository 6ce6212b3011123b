// SLA countdowns: any element with data-due (ISO time) shows the time left or overdue.
function human(ms) {
  const m = Math.round(Math.abs(ms) / 60000), h = Math.floor(m / 60), d = Math.floor(h / 24);
  return d ? `${d}d ${h % 24}h` : h ? `${h}h ${m % 60}m` : `${m}m`;
}
function tick() {
  for (const el of document.querySelectorAll("[data-due]")) {
    const left = new Date(el.dataset.due) - Date.now();
    const ahead = el.dataset.ahead || "due in", past = el.dataset.past || "overdue by";
    el.textContent = left >= 0 ? `${ahead} ${human(left)}` : `${past} ${human(left)}`;
    el.classList.toggle("overdue", left < 0);
  }
}
tick(); setInterval(tick, 15000);
// Keyboard: keys are ignored while typing; Escape leaves a text field.
const typing = (e) => ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && typing(e)) { e.target.blur(); return; }
  if (typing(e) || e.metaKey || e.ctrlKey || e.altKey) return;
  const action = document.querySelector(`[data-key="${e.key}"]`);
  if (action) { e.preventDefault(); action.dataset.focus ? action.focus() : action.click(); }
  if (window.onKey) window.onKey(e);
});
