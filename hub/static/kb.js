// Knowledge-base entry list: GET /api/kb/entries?q=&status= → {items, total}.
import { el, formatDateTime, initStaffHeader } from "/static/common.js";

const STATUS = {
  draft: ["草稿", "tag tag-gray"],
  published: ["已发布", "tag tag-green"],
  archived: ["已归档", "tag tag-orange"],
};

const search = document.getElementById("kb-search");
const status = document.getElementById("kb-status");
const rows = document.getElementById("kb-rows");
const total = document.getElementById("kb-total");

let seq = 0;
let debounce = null;

function stateRow(text, cls = "") {
  rows.textContent = "";
  rows.append(el("tr", { class: `state-row ${cls}` }, el("td", { colspan: "5", text })));
}

function branchName(branch) {
  if (!branch) return "未分类";
  if (typeof branch === "object") return branch.name || branch.title || String(branch.id ?? "未分类");
  return String(branch);
}

function render(data) {
  const items = Array.isArray(data.items) ? data.items : [];
  total.textContent = `共 ${Number.isFinite(data.total) ? data.total : items.length} 条`;
  if (items.length === 0) {
    stateRow(search.value.trim() || status.value ? "没有符合条件的知识条目" : "知识库中还没有知识条目");
    return;
  }
  rows.textContent = "";
  for (const it of items) {
    const [label, cls] = STATUS[it.status] || [it.status || "未知", "tag tag-gray"];
    const similar = Array.isArray(it.similar) ? it.similar : [];
    rows.append(el("tr", { "data-testid": "kb-row", dataset: { entryId: String(it.id ?? ""), status: it.status || "" } },
      el("td", { class: "branch", text: branchName(it.branch) }),
      el("td", { class: "q", title: it.answer || "", text: it.question || "" }),
      el("td", { class: "num", title: similar.join("\n"), text: String(similar.length) }),
      el("td", null, el("span", { class: cls, text: label })),
      el("td", { class: "time", text: formatDateTime(it.updated_at) || "—" })));
  }
}

async function load() {
  const mine = ++seq;
  const params = new URLSearchParams({ q: search.value.trim(), status: status.value });
  try {
    const resp = await fetch(`/api/kb/entries?${params}`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (mine !== seq) return; // a newer search is under way
    if (resp.status === 401) {
      location.href = "/login?next=/kb";
      return;
    }
    if (!resp.ok) {
      let reason = null;
      try { reason = (await resp.json()).reason; } catch (_) { /* not JSON */ }
      stateRow(reason || `加载失败（${resp.status}），请稍后重试`, "error");
      total.textContent = "";
      return;
    }
    render(await resp.json());
  } catch (_) {
    if (mine === seq) {
      stateRow("网络连接失败，请稍后重试", "error");
      total.textContent = "";
    }
  }
}

search.addEventListener("input", () => {
  clearTimeout(debounce);
  debounce = setTimeout(load, 300);
});
search.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.isComposing) { clearTimeout(debounce); load(); }
});
status.addEventListener("change", load);

initStaffHeader("/kb");
load();
