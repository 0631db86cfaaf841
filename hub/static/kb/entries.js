// The entry table: search and filters, paging, checkboxes and bulk actions.
import { el, formatDateTime } from "/static/common.js";
import { confirmDialog } from "/static/kb/dialogs.js";
import { openEditor } from "/static/kb/editor.js";
import { $, PAGE_SIZE, STATUS, api, branchById, state, toast } from "/static/kb/state.js";
import { loadBranches } from "/static/kb/tree.js";

/* ------------------------------------------------------------------ entry table */

function stateRow(text, cls = "") {
  const rows = $("kb-rows");
  rows.textContent = "";
  rows.append(el("tr", { class: `state-row ${cls}` }, el("td", { colspan: "7", text })));
}

function filters() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.offset) });
  const q = $("kb-search").value.trim();
  if (q) params.set("q", q);
  if ($("kb-status").value) params.set("status", $("kb-status").value);
  if ($("kb-editor").value) params.set("editor", $("kb-editor").value);
  if ($("kb-from").value) params.set("from", $("kb-from").value);
  if ($("kb-to").value) params.set("to", $("kb-to").value);
  // a search covers every branch; the selected branch narrows it only when asked to (只搜当前分类)
  if (state.branchId !== null && (!q || $("kb-in-branch").checked)) params.set("branch_id", String(state.branchId));
  updateBranchFilter(q);
  return params;
}

/** The 只搜「…」 box shows while a branch is selected and something is searched for. */
export function updateBranchFilter(q = $("kb-search").value.trim()) {
  const branch = state.branchId !== null ? branchById(state.branchId) : null;
  $("kb-in-branch-label").classList.toggle("hidden", !(branch && q));
  if (branch) $("kb-in-branch-name").textContent = `只搜“${branch.name}”`;
}

export async function load() {
  const mine = ++state.seq;
  try {
    const data = await api("GET", `/api/kb/search?${filters()}`);
    if (mine !== state.seq) return;
    state.items = data.items;
    state.total = data.total;
    render();
  } catch (e) {
    if (mine !== state.seq) return;
    stateRow(e.reason, "error");
    $("kb-total").textContent = "";
  }
}

function render() {
  $("kb-total").textContent = `共 ${state.total} 条`;
  const rows = $("kb-rows");
  if (state.items.length === 0) {
    const filtered = $("kb-search").value.trim() || $("kb-status").value || $("kb-editor").value || $("kb-from").value
      || $("kb-to").value || state.branchId !== null;
    stateRow(filtered ? "没有符合条件的知识条目" : "知识库中还没有知识条目");
  } else {
    rows.textContent = "";
    for (const it of state.items) {
      const [label, cls] = STATUS[it.status] || [it.status, "tag tag-gray"];
      const checked = state.selected.has(it.id);
      rows.append(el("tr", { "data-testid": "kb-row", dataset: { entryId: it.id, status: it.status } },
        el("td", { class: "chk" }, el("input", {
          type: "checkbox", class: "row-check", "data-testid": "row-check", "aria-label": `选择 ${it.question}`,
          checked, onchange: (ev) => { toggle(it.id, ev.target.checked); },
        })),
        el("td", { class: "branch", text: it.branch_path || "—" }),
        el("td", { class: "q" }, el("a", {
          "data-testid": "kb-open", title: "编辑", text: it.question, onclick: () => openEditor(it.id),
        }), it.live === false && it.status === "published" ? el("span", { class: "tag tag-orange", text: " 不在生效期" }) : null),
        el("td", { class: "num", title: (it.similar || []).join("\n"), text: String((it.similar || []).length) }),
        el("td", null, el("span", { class: cls, text: label })),
        el("td", { text: it.updated_by || "—" }),
        el("td", { class: "time", text: formatDateTime(it.updated_at) || "—" })));
    }
  }
  const page = Math.floor(state.offset / PAGE_SIZE) + 1;
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  $("page-info").textContent = `第 ${page} / ${pages} 页`;
  $("page-prev").disabled = state.offset === 0;
  $("page-next").disabled = state.offset + PAGE_SIZE >= state.total;
  $("select-all").checked = state.items.length > 0 && state.items.every((it) => state.selected.has(it.id));
  updateBulk();
}

function toggle(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  $("select-all").checked = state.items.length > 0 && state.items.every((it) => state.selected.has(it.id));
  updateBulk();
}

function updateBulk() {
  const n = state.selected.size;
  $("bulk-count").textContent = String(n);
  for (const id of ["bulk-publish", "bulk-draft", "bulk-archive", "bulk-delete"]) $(id).disabled = n === 0;
  $("bulk-move").disabled = n === 0 || !$("bulk-move-target").value;
}

$("select-all").addEventListener("change", (ev) => {
  for (const it of state.items) {
    if (ev.target.checked) state.selected.add(it.id); else state.selected.delete(it.id);
  }
  render();
});
$("bulk-move-target").addEventListener("change", updateBulk);

const BULK = {
  publish: ["发布", false],
  draft: ["转草稿", false],
  archive: ["归档", false],
  move: ["移动", false],
  delete: ["删除", true],
};
for (const [action, [label, danger]] of Object.entries(BULK)) {
  $(`bulk-${action}`).addEventListener("click", async () => {
    const ids = [...state.selected];
    if (ids.length === 0) return;
    const body = { action, ids };
    let text = `确定${label}选中的 ${ids.length} 个知识条目吗？`;
    if (action === "move") {
      const target = branchById(Number($("bulk-move-target").value));
      if (!target) return;
      body.branch_id = target.id;
      text = `确定把选中的 ${ids.length} 个知识条目移动到“${target.path}”吗？`;
    }
    if (action === "delete") text += "删除后不能恢复（版本历史会保留）。";
    if (!(await confirmDialog(text, label, danger))) return;
    try {
      const result = await api("POST", "/api/kb/bulk", body);
      toast(`已${label} ${result.count} 个知识条目`);
      state.selected.clear();
      await Promise.all([load(), loadBranches()]);
    } catch (e) {
      toast(e.reason);
    }
  });
}

let debounce = null;
$("kb-search").addEventListener("input", () => {
  clearTimeout(debounce);
  debounce = setTimeout(() => { state.offset = 0; load(); }, 300);
});
$("kb-search").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.isComposing) { clearTimeout(debounce); state.offset = 0; load(); }
});
for (const id of ["kb-status", "kb-editor", "kb-from", "kb-to", "kb-in-branch"]) {
  $(id).addEventListener("change", () => { state.offset = 0; load(); });
}
$("page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); });
$("page-next").addEventListener("click", () => { state.offset += PAGE_SIZE; load(); });

export async function loadEditors() {
  try {
    const data = await api("GET", "/api/kb/editors");
    const select = $("kb-editor");
    const keep = select.value;
    select.textContent = "";
    select.append(el("option", { value: "" }, "全部编辑人"));
    for (const name of data.items) select.append(el("option", { value: name }, name));
    select.value = keep;
  } catch (_) { /* the filter just stays empty */ }
}
