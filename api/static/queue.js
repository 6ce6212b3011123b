const rows = [...document.querySelectorAll("#queue tr[data-href]")];
let at = 0;
function select(i) {
  if (!rows.length) return;
  at = Math.max(0, Math.min(rows.length - 1, i));
  rows.forEach((r, n) => r.classList.toggle("selected", n === at));
  rows[at].scrollIntoView({block: "nearest"});
}
rows.forEach((r, n) => r.addEventListener("click", (e) => {
  if (e.target.tagName !== "INPUT") location.href = r.dataset.href;
}));
const all = document.getElementById("select-sampled");
if (all) all.addEventListener("change", () => {
  document.querySelectorAll("input.pick").forEach((box) => { box.checked = all.checked; });
});
// A decision sent from an item page: the edit the browser kept for it is no longer needed.
const query = new URLSearchParams(location.search);
if (query.get("msg") === "decided" && query.get("item")) {
  localStorage.removeItem("ragline-edit-" + query.get("item"));
}
select(0);
window.onKey = (e) => {
  if (e.key === "j") select(at + 1);
  else if (e.key === "k") select(at - 1);
  else if ((e.key === "Enter" || e.key === "o") && rows.length) location.href = rows[at].dataset.href;
};
