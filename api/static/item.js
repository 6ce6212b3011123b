// "r" on an escalation focuses the reason code first; Enter there rejects. The note starts
// from the code's template unless the reviewer wrote their own.
const reject = document.getElementById("reject"), code = document.getElementById("reason_code");
const note = document.getElementById("note");
let templated = "";
function template() {
  const text = code.selectedOptions[0]?.dataset.note || "";
  if (note && (!note.value || note.value === templated)) { note.value = text; templated = text; }
}
if (reject && code) {
  reject.removeAttribute("data-key");
  window.onKey = (e) => { if (e.key === "r") { e.preventDefault(); template(); code.focus(); } };
  code.addEventListener("change", template);
  code.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); reject.click(); } });
}
// An edit shows its difference from the draft before it is delivered, and is kept in the
// browser until it is sent (a session that expired meanwhile does not lose it).
const answer = document.getElementById("answer"), diff = document.getElementById("edit-diff");
function words(text) { return text.split(/(\s+)/).filter((w) => w.length); }
function wordDiff(a, b) {
  const x = words(a), y = words(b), n = x.length, m = y.length;
  const L = Array.from({length: n + 1}, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = []; let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push(["=", x[i]]); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { out.push(["+", y[j]]); j++; }
    else { out.push(["-", x[i]]); i++; }
  }
  return out;
}
function showDiff() {
  if (!answer || !diff) return;
  const draft = answer.dataset.draft || "";
  if (answer.value === draft) { diff.hidden = true; diff.replaceChildren(); return; }
  const parts = wordDiff(draft, answer.value).map(([op, text]) => {
    const el = document.createElement(op === "+" ? "ins" : op === "-" ? "del" : "span");
    el.textContent = text; return el;
  });
  const label = document.createElement("strong"); label.textContent = "Changes to the draft: ";
  diff.replaceChildren(label, ...parts); diff.hidden = false;
}
if (answer && answer.dataset.item) {
  const kept = "ragline-edit-" + answer.dataset.item;
  const saved = localStorage.getItem(kept);
  if (saved !== null && saved !== answer.value) answer.value = saved;
  answer.addEventListener("input", () => {
    if (answer.value === answer.dataset.draft) localStorage.removeItem(kept);
    else localStorage.setItem(kept, answer.value);
    showDiff();
  });
  showDiff();
}
// A decided item: the edit the browser kept for it is no longer needed.
const decided = document.currentScript && document.currentScript.dataset.decided;
if (decided) localStorage.removeItem("ragline-edit-" + decided);
