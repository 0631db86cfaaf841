// The branch tree (业务分类): selecting, adding, renaming, moving and deleting branches.
import { el } from "/static/common.js";
import { confirmDialog, promptDialog } from "/static/kb/dialogs.js";
import { load } from "/static/kb/entries.js";
import { $, api, branchById, branchOptions, showError, state, toast } from "/static/kb/state.js";

/* ------------------------------------------------------------------ branches */

export async function loadBranches() {
  try {
    const data = await api("GET", "/api/kb/branches");
    state.branches = data.items;
  } catch (e) {
    showError($("branch-error"), e.reason);
    return;
  }
  if (state.branchId !== null && !branchById(state.branchId)) state.branchId = null;
  renderTree();
  branchOptions($("f-branch"), { none: "请选择知识分类" });
  branchOptions($("bulk-move-target"), { none: "移动到…" });
  branchOptions($("export-branch"), { all: "全部知识分类" });
}

function renderTree() {
  const tree = $("kb-tree");
  tree.textContent = "";
  const total = state.branches.reduce((n, b) => n + b.entry_count, 0);
  tree.append(el("li", { role: "treeitem" }, treeNode(null, "全部知识条目", total)));
  const children = new Map();
  for (const b of state.branches) {
    const key = b.parent_id ?? null;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(b);
  }
  const subtreeCount = (b) => b.entry_count + (children.get(b.id) || []).reduce((n, c) => n + subtreeCount(c), 0);
  const build = (parent) => {
    const list = el("ul", { role: "group" });
    for (const b of (children.get(parent) || []).sort((x, y) => x.name.localeCompare(y.name, "zh-CN"))) {
      const li = el("li", { role: "treeitem" }, treeNode(b.id, b.name, subtreeCount(b)));
      if (children.has(b.id)) li.append(build(b.id));
      list.append(li);
    }
    return list;
  };
  tree.append(...build(null).childNodes);
  const has = state.branchId !== null;
  for (const id of ["branch-rename", "branch-move", "branch-delete"]) $(id).disabled = !has;
  const current = branchById(state.branchId);
  $("kb-title").textContent = current ? current.path : "全部知识条目";
}

function treeNode(id, name, count) {
  return el("div", {
    class: `node${state.branchId === id ? " selected" : ""}`,
    "data-testid": "kb-branch",
    dataset: { branchId: id === null ? "" : String(id) },
    title: id === null ? "全部" : (branchById(id) || {}).path,
    onclick: () => {
      state.branchId = id;
      state.offset = 0;
      showError($("branch-error"), "");
      renderTree();
      load();
    },
  }, el("span", { class: "name", text: name }), el("span", { class: "n", text: String(count) }));
}

$("branch-add").addEventListener("click", async () => {
  const parent = branchById(state.branchId);
  const created = await promptDialog({
    title: parent ? `在“${parent.path}”下新建知识分类` : "新建知识分类",
    label: "分类名称",
    submit: ({ text }) => api("POST", "/api/kb/branches", { name: text, parent_id: parent ? parent.id : null }),
  });
  if (created) { toast("知识分类已创建"); await loadBranches(); }
});

$("branch-rename").addEventListener("click", async () => {
  const b = branchById(state.branchId);
  if (!b) return;
  const done = await promptDialog({
    title: "重命名知识分类",
    label: "新名称",
    value: b.name,
    submit: ({ text }) => api("PATCH", `/api/kb/branches/${b.id}`, { name: text }),
  });
  if (done) { toast("知识分类已重命名"); await loadBranches(); load(); }
});

$("branch-move").addEventListener("click", async () => {
  const b = branchById(state.branchId);
  if (!b) return;
  const inside = (x) => x.id === b.id || x.path.startsWith(`${b.path}/`);
  const options = [["", "（顶级分类）"], ...state.branches.filter((x) => !inside(x)).map((x) => [String(x.id), x.path])];
  const done = await promptDialog({
    title: `移动知识分类“${b.path}”`,
    selectLabel: "移动到",
    options,
    selectValue: b.parent_id === null ? "" : String(b.parent_id),
    submit: ({ select }) => api("PATCH", `/api/kb/branches/${b.id}`, { parent_id: select ? Number(select) : null }),
  });
  if (done) { toast("知识分类已移动"); await loadBranches(); load(); }
});

$("branch-delete").addEventListener("click", async () => {
  const b = branchById(state.branchId);
  if (!b) return;
  showError($("branch-error"), "");
  if (!(await confirmDialog(`确定删除知识分类“${b.path}”吗？`, "删除", true))) return;
  try {
    await api("DELETE", `/api/kb/branches/${b.id}`);
    toast("知识分类已删除");
    state.branchId = null;
    await loadBranches();
    load();
  } catch (e) {
    showError($("branch-error"), e.reason);
  }
});
