// KB editor (知识库): branch tree, entry table with bulk actions, entry editor with versions,
// 未解决问题, 发布预览, import/export. Speaks the JSON API of hub/routes/kb.py.
import { el, formatDateTime, initStaffHeader, toMillis } from "/static/common.js";

const STATUS = {
  draft: ["草稿", "tag tag-gray"],
  published: ["已发布", "tag tag-green"],
  archived: ["已归档", "tag tag-orange"],
};
const PAGE_SIZE = 200;
const MAX_ANSWER = 5000;

const $ = (id) => document.getElementById(id);

const state = {
  branches: [],          // [{id, name, parent_id, path, entry_count}]
  branchId: null,        // selected branch (null: all)
  items: [],
  total: 0,
  offset: 0,
  selected: new Set(),   // entry ids checked
  seq: 0,
  entry: null,           // entry open in the editor (null: new)
  dirty: false,
  resolveQuestions: null, // questions of a 未解决问题 group the new entry answers
};

/* ------------------------------------------------------------------ helpers */

let toastTimer = null;
function toast(text) {
  const node = $("toast");
  node.textContent = text;
  node.classList.remove("hidden");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.add("hidden"), 4000);
}

class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; this.reason = reason; }
}

async function api(method, path, body, { form = null } = {}) {
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (form) opts.body = form;
  else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (_) {
    throw new ApiError(0, "网络连接失败，请稍后重试");
  }
  if (resp.status === 401) {
    location.href = "/login?next=/kb";
    throw new ApiError(401, "请先登录。");
  }
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON */ }
  if (!resp.ok) throw new ApiError(resp.status, (data && data.reason) || `操作失败（${resp.status}），请稍后重试`);
  return data;
}

function showError(node, text) {
  node.textContent = text || "";
  node.classList.toggle("hidden", !text);
}

function branchById(id) { return state.branches.find((b) => b.id === id) || null; }

function branchOptions(select, { all = null, none = null, exclude = null } = {}) {
  const keep = select.value;
  select.textContent = "";
  if (all !== null) select.append(el("option", { value: "" }, all));
  if (none !== null) select.append(el("option", { value: "" }, none));
  const excluded = new Set();
  if (exclude !== null) {
    const root = branchById(exclude);
    for (const b of state.branches) if (root && (b.id === root.id || b.path.startsWith(`${root.path}/`))) excluded.add(b.id);
  }
  for (const b of state.branches) {
    if (excluded.has(b.id)) continue;
    select.append(el("option", { value: String(b.id) }, b.path));
  }
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

/** ISO (UTC) → value for <input type="datetime-local"> in the browser's time. */
function toLocalInput(iso) {
  const t = toMillis(iso);
  if (Number.isNaN(t)) return "";
  const d = new Date(t);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}

/* ------------------------------------------------------------------ dialogs (in-page, never window.confirm) */

function confirmDialog(text, okLabel = "确定", danger = false) {
  return new Promise((resolve) => {
    const modal = $("confirm-modal");
    $("confirm-text").textContent = text;
    const ok = $("confirm-ok");
    ok.textContent = okLabel;
    ok.className = danger ? "btn btn-danger" : "btn btn-primary";
    modal.classList.remove("hidden");
    const done = (value) => {
      modal.classList.add("hidden");
      ok.removeEventListener("click", yes);
      $("confirm-cancel").removeEventListener("click", no);
      resolve(value);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener("click", yes);
    $("confirm-cancel").addEventListener("click", no);
    ok.focus();
  });
}

/** A small form dialog: text input and/or a select. Resolves {text, select} or null; `submit` may throw to keep it open. */
function promptDialog({ title, label = "", value = "", selectLabel = null, options = null, selectValue = "", submit }) {
  return new Promise((resolve) => {
    const modal = $("prompt-modal");
    $("prompt-title").textContent = title;
    $("prompt-label").textContent = label;
    const input = $("prompt-input");
    input.value = value;
    input.parentElement.classList.toggle("hidden", !label);
    const wrap = $("prompt-select-wrap");
    const select = $("prompt-select");
    wrap.classList.toggle("hidden", !options);
    if (options) {
      $("prompt-select-label").textContent = selectLabel || "";
      select.textContent = "";
      for (const [v, text] of options) select.append(el("option", { value: v }, text));
      select.value = selectValue;
    }
    const error = $("prompt-error");
    showError(error, "");
    modal.classList.remove("hidden");
    (label ? input : select).focus();
    const close = (result) => {
      modal.classList.add("hidden");
      $("prompt-ok").removeEventListener("click", ok);
      $("prompt-cancel").removeEventListener("click", cancel);
      input.removeEventListener("keydown", enter);
      resolve(result);
    };
    const ok = async () => {
      const result = { text: input.value.trim(), select: select.value };
      try {
        if (submit) await submit(result);
        close(result);
      } catch (e) {
        showError(error, e.reason || e.message);
      }
    };
    const cancel = () => close(null);
    const enter = (ev) => { if (ev.key === "Enter" && !ev.isComposing) ok(); };
    $("prompt-ok").addEventListener("click", ok);
    $("prompt-cancel").addEventListener("click", cancel);
    input.addEventListener("keydown", enter);
  });
}

document.addEventListener("keydown", (ev) => {
  if (ev.key !== "Escape") return;
  for (const id of ["confirm-cancel", "prompt-cancel", "attach-cancel"]) {
    const button = $(id);
    if (!button.closest(".modal").classList.contains("hidden")) { button.click(); return; }
  }
  if (!$("entry-editor").classList.contains("hidden")) closeEditor();
});

/* ------------------------------------------------------------------ tabs */

function showTab(name) {
  for (const tab of document.querySelectorAll(".kb-tab")) {
    const on = tab.dataset.tab === name;
    tab.classList.toggle("active", on);
    tab.setAttribute("aria-selected", on ? "true" : "false");
  }
  for (const panel of ["entries", "unanswered", "preview", "transfer"]) {
    $(`panel-${panel}`).classList.toggle("hidden", panel !== name);
  }
  if (name === "unanswered") loadUnanswered();
  if (name === "preview") loadDrafts();
  if (name === "transfer") updateExportLink();
  history.replaceState(null, "", name === "entries" ? "/kb" : `/kb#${name}`);
}
for (const tab of document.querySelectorAll(".kb-tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));

/* ------------------------------------------------------------------ branches */

async function loadBranches() {
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
  if (state.branchId !== null) params.set("branch_id", String(state.branchId));
  return params;
}

async function load() {
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
for (const id of ["kb-status", "kb-editor", "kb-from", "kb-to"]) {
  $(id).addEventListener("change", () => { state.offset = 0; load(); });
}
$("page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); });
$("page-next").addEventListener("click", () => { state.offset += PAGE_SIZE; load(); });

async function loadEditors() {
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

/* ------------------------------------------------------------------ entry editor */

function formValues() {
  return {
    branch_id: $("f-branch").value ? Number($("f-branch").value) : null,
    question: $("f-question").value.trim(),
    similar: $("f-similar").value.split("\n").map((s) => s.trim()).filter(Boolean),
    answer: $("f-answer").value,
    short_answer: $("f-short").value.trim(),
    keywords: $("f-keywords").value,
    valid_from: fromLocalInput($("f-valid-from").value),
    valid_to: fromLocalInput($("f-valid-to").value),
  };
}

function fillForm(entry, preset = {}) {
  const e = entry || {};
  $("f-branch").value = e.branch_id ? String(e.branch_id) : (preset.branch_id ? String(preset.branch_id) : "");
  $("f-question").value = e.question || preset.question || "";
  $("f-similar").value = (e.similar || preset.similar || []).join("\n");
  $("f-answer").value = e.answer || "";
  $("f-short").value = e.short_answer || "";
  $("f-keywords").value = (e.keywords || []).join("，");
  $("f-valid-from").value = toLocalInput(e.valid_from);
  $("f-valid-to").value = toLocalInput(e.valid_to);
  updateCount();
  const rendered = $("f-answer-rendered");
  if (entry) {
    rendered.innerHTML = entry.answer; // sanitised by the server (allow-listed tags, attributes and URLs only)
    rendered.classList.remove("hidden");
  } else {
    rendered.textContent = "";
    rendered.classList.add("hidden");
  }
  const [label, cls] = entry ? STATUS[entry.status] : ["未保存", "tag tag-gray"];
  const status = $("f-status");
  status.textContent = label;
  status.className = cls;
  status.dataset.status = entry ? entry.status : "";
  $("f-version").textContent = entry ? `版本 ${entry.version}` : "";
  $("editor-title").textContent = entry ? "编辑知识条目" : "新建知识条目";
  $("entry-publish").disabled = !!entry && entry.status === "published";
  $("entry-draft").disabled = !entry || entry.status === "draft";
  $("entry-archive").disabled = !entry || entry.status === "archived";
  $("entry-delete").disabled = !entry;
  state.dirty = false;
}

function updateCount() {
  const n = $("f-answer").value.length;
  const node = $("f-answer-count");
  node.textContent = `${n}/${MAX_ANSWER}`;
  node.style.color = n > MAX_ANSWER ? "var(--red)" : "";
}

async function openEditor(id, preset = {}) {
  showError($("entry-error"), "");
  $("entry-preview-panel").classList.add("hidden");
  $("entry-preview-result").textContent = "";
  state.resolveQuestions = preset.resolve || null;
  if (id) {
    try {
      state.entry = await api("GET", `/api/kb/entries/${encodeURIComponent(id)}`);
    } catch (e) {
      toast(e.reason);
      return;
    }
  } else {
    state.entry = null;
  }
  fillForm(state.entry, { branch_id: state.branchId, ...preset });
  $("entry-editor").classList.remove("hidden");
  $("f-question").focus();
  if (state.entry) loadVersions(); else $("history").classList.add("hidden");
}

async function closeEditor() {
  if (state.dirty && !(await confirmDialog("有未保存的修改，确定关闭吗？", "关闭"))) return;
  $("entry-editor").classList.add("hidden");
  state.entry = null;
  state.dirty = false;
}

$("entry-close").addEventListener("click", closeEditor);
$("entry-new").addEventListener("click", () => openEditor(null));
$("entry-form").addEventListener("input", () => { state.dirty = true; });
$("f-answer").addEventListener("input", updateCount);

function insertAround(before, after, placeholder) {
  const area = $("f-answer");
  const { selectionStart: s, selectionEnd: e, value } = area;
  const inner = value.slice(s, e) || placeholder;
  area.value = value.slice(0, s) + before + inner + after + value.slice(e);
  area.focus();
  area.selectionStart = s + before.length;
  area.selectionEnd = s + before.length + inner.length;
  state.dirty = true;
  updateCount();
}
$("f-insert-link").addEventListener("click", async () => {
  const got = await promptDialog({ title: "插入链接", label: "链接地址（https://…）", value: "https://" });
  if (got && got.text) insertAround(`<a href="${got.text.replace(/"/g, "&quot;")}">`, "</a>", "链接文字");
});
$("f-insert-image").addEventListener("click", async () => {
  const got = await promptDialog({ title: "插入图片", label: "图片地址（https://…）", value: "https://" });
  if (got && got.text) insertAround(`<img src="${got.text.replace(/"/g, "&quot;")}" alt="`, '">', "图片说明");
});

/** Save the form; returns the saved entry or null (the error is shown). */
async function save() {
  showError($("entry-error"), "");
  const values = formValues();
  try {
    let saved;
    if (state.entry) {
      saved = await api("PUT", `/api/kb/entries/${encodeURIComponent(state.entry.id)}`, { ...values, version: state.entry.version });
    } else {
      if (state.resolveQuestions) values.resolve_questions = state.resolveQuestions;
      saved = await api("POST", "/api/kb/entries", values);
      state.resolveQuestions = null;
    }
    state.entry = saved;
    fillForm(saved);
    loadVersions();
    load();
    loadBranches();
    loadEditors();
    return saved;
  } catch (e) {
    showError($("entry-error"), e.reason);
    return null;
  }
}

$("entry-save").addEventListener("click", async () => {
  if (await save()) toast("已保存");
});

for (const [id, status, label] of [["entry-publish", "published", "发布"], ["entry-draft", "draft", "转草稿"],
  ["entry-archive", "archived", "归档"]]) {
  $(id).addEventListener("click", async () => {
    if ((state.dirty || !state.entry) && !(await save())) return;
    try {
      const entry = await api("POST", `/api/kb/entries/${encodeURIComponent(state.entry.id)}/status`, { status });
      state.entry = entry;
      fillForm(entry);
      loadVersions();
      load();
      toast(`已${label}`);
    } catch (e) {
      showError($("entry-error"), e.reason);
    }
  });
}

$("entry-delete").addEventListener("click", async () => {
  if (!state.entry) return;
  if (!(await confirmDialog(`确定删除知识条目“${state.entry.question}”吗？`, "删除", true))) return;
  try {
    await api("DELETE", `/api/kb/entries/${encodeURIComponent(state.entry.id)}`);
    state.selected.delete(state.entry.id);
    state.dirty = false;
    $("entry-editor").classList.add("hidden");
    toast("知识条目已删除");
    load();
    loadBranches();
  } catch (e) {
    showError($("entry-error"), e.reason);
  }
});

$("entry-preview").addEventListener("click", async () => {
  showError($("entry-error"), "");
  const panel = $("entry-preview-panel");
  const box = $("entry-preview-result");
  panel.classList.remove("hidden");
  box.textContent = "正在用最近 30 天的市民提问重放，请稍候…";
  const body = { entry: formValues(), days: 30 };
  if (state.entry) body.entry_id = state.entry.id;
  try {
    renderPreview(box, await api("POST", "/api/kb/preview", body));
  } catch (e) {
    box.textContent = "";
    showError($("entry-error"), e.reason);
  }
  panel.scrollIntoView({ behavior: "smooth", block: "start" });
});

/* ------------------------------------------------------------------ versions */

async function loadVersions() {
  if (!state.entry) return;
  const list = $("version-list");
  try {
    const data = await api("GET", `/api/kb/entries/${encodeURIComponent(state.entry.id)}/versions`);
    list.textContent = "";
    for (const v of data.items) {
      const diff = el("ul", { class: "v-diff", "data-testid": "version-diff" });
      for (const d of v.diff) diff.append(el("li", { text: d.text || d.label }));
      if (v.note) diff.append(el("li", { class: "muted", text: v.note }));
      const current = v.number === state.entry.version;
      list.append(el("li", { class: "version-item", "data-testid": "version-item", dataset: { version: String(v.number) } },
        el("div", { class: "v-head" },
          el("b", { text: `版本 ${v.number}` }),
          el("span", { class: "tag", text: v.action_label }),
          el("span", { text: v.editor || "—" }),
          el("span", { class: "muted", text: formatDateTime(v.created_at) }),
          el("span", { class: "spacer" }),
          current ? el("span", { class: "muted", text: "当前版本" }) : el("button", {
            class: "btn btn-sm version-rollback", type: "button", "data-testid": "version-rollback",
            onclick: () => rollback(v.number),
          }, "回滚到此版本")),
        diff));
    }
    $("history").classList.remove("hidden");
  } catch (e) {
    list.textContent = "";
    list.append(el("li", { class: "muted", text: e.reason }));
  }
}

async function rollback(number) {
  if (!state.entry) return;
  if (!(await confirmDialog(`确定把该知识条目的内容回滚到版本 ${number} 吗？回滚会生成一个新版本。`, "回滚"))) return;
  try {
    const entry = await api("POST", `/api/kb/entries/${encodeURIComponent(state.entry.id)}/rollback`, { version: number });
    state.entry = entry;
    fillForm(entry);
    loadVersions();
    load();
    toast(`已回滚到版本 ${number}`);
  } catch (e) {
    showError($("entry-error"), e.reason);
  }
}

/* ------------------------------------------------------------------ preview */

function hitText(hit) {
  if (!hit) return "（机器人不回答，建议转人工）";
  const name = hit.entry_id === "__draft__" ? "本条目（草稿）" : hit.question;
  return `${name}（置信度 ${Math.round(hit.score * 100)}%）`;
}

function renderPreview(box, data) {
  box.textContent = "";
  const changed = data.changed || [];
  box.append(el("p", { class: "summary", "data-testid": "preview-summary",
    text: `最近 ${data.days} 天共 ${data.asked} 次提问（${data.questions} 个不同问题），发布后有 ${changed.length} 个问题的回答会变化。`
      + (data.draft_live === false ? "注意：该条目不在生效期内，发布后不会回答。" : "") }));
  if (changed.length === 0) return;
  const body = el("tbody");
  for (const c of changed) {
    body.append(el("tr", { "data-testid": "preview-row" },
      el("td", { text: c.question }),
      el("td", { class: "num", text: String(c.count) }),
      el("td", { text: hitText(c.before) }),
      el("td", { text: c.answer_text_changed ? "本条目的新答案" : hitText(c.after) })));
  }
  box.append(el("table", { class: "data-table", "data-testid": "preview-table" },
    el("thead", null, el("tr", null, el("th", null, "市民提问"), el("th", { class: "num" }, "次数"),
      el("th", null, "现在的回答"), el("th", null, "发布后的回答"))), body));
}

async function loadDrafts() {
  try {
    const data = await api("GET", "/api/kb/search?status=draft&limit=500");
    const select = $("pv-entry");
    const keep = select.value;
    select.textContent = "";
    if (data.items.length === 0) select.append(el("option", { value: "" }, "（没有草稿）"));
    for (const it of data.items) select.append(el("option", { value: it.id }, `${it.question}（${it.branch_path}）`));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  } catch (e) {
    toast(e.reason);
  }
}

$("pv-run").addEventListener("click", async () => {
  const id = $("pv-entry").value;
  const box = $("pv-result");
  if (!id) { box.textContent = "请先选择一个草稿。"; return; }
  box.textContent = "正在重放市民提问，请稍候…";
  $("pv-run").disabled = true;
  try {
    renderPreview(box, await api("POST", "/api/kb/preview", { entry_id: id, days: Number($("pv-days").value) || 30 }));
  } catch (e) {
    box.textContent = e.reason;
  } finally {
    $("pv-run").disabled = false;
  }
});

/* ------------------------------------------------------------------ 未解决问题 */

async function loadUnanswered() {
  const list = $("ua-list");
  list.textContent = "";
  list.append(el("li", { class: "muted", text: "加载中…" }));
  try {
    const data = await api("GET", `/api/kb/unanswered?days=${$("ua-days").value}`);
    list.textContent = "";
    $("ua-total").textContent = `共 ${data.total} 组`;
    if (data.items.length === 0) list.append(el("li", { class: "muted", "data-testid": "ua-empty", text: "暂无未解决问题" }));
    for (const g of data.items) list.append(groupItem(g));
  } catch (e) {
    list.textContent = "";
    list.append(el("li", { class: "form-error", text: e.reason }));
  }
}

function groupItem(g) {
  const texts = g.questions.map((q) => q.text);
  const details = el("details", null, el("summary", null, `${g.questions.length} 种问法`),
    el("ul", null, ...g.questions.map((q) => el("li", { text: `${q.text}（${q.count} 次）` }))));
  return el("li", { class: "ua-group", "data-testid": "ua-group", dataset: { key: g.key } },
    el("div", { class: "ua-head" },
      el("span", { class: "ua-q", "data-testid": "ua-question", text: g.question }),
      el("span", { class: "ua-count", "data-testid": "ua-count", title: "提问次数", text: String(g.count) }),
      ...g.reasons.map((r) => el("span", { class: "tag tag-gray", text: `${r.label} ${r.count}` })),
      el("span", { class: "muted", text: formatDateTime(g.last_at) }),
      el("span", { class: "ua-actions" },
        el("button", { class: "btn btn-sm", type: "button", "data-testid": "ua-attach",
          onclick: () => openAttach(g.question, texts) }, "添加为相似问法"),
        el("button", { class: "btn btn-sm", type: "button", "data-testid": "ua-new",
          onclick: () => { showTab("entries"); openEditor(null, { question: g.question, similar: texts.filter((t) => t !== g.question), resolve: texts }); } },
        "新建知识条目"),
        el("button", { class: "btn btn-sm", type: "button", "data-testid": "ua-ignore",
          onclick: () => ignoreGroup(texts) }, "忽略"))),
    details);
}

async function ignoreGroup(texts) {
  if (!(await confirmDialog(`确定忽略这 ${texts.length} 种问法吗？它们会从列表中移除（再次出现时会重新列出）。`, "忽略"))) return;
  try {
    await api("POST", "/api/kb/unanswered/resolve", { questions: texts });
    toast("已忽略");
    loadUnanswered();
  } catch (e) {
    toast(e.reason);
  }
}

let attachTexts = [];
async function openAttach(question, texts) {
  attachTexts = texts;
  const modal = $("attach-modal");
  const chips = $("attach-questions");
  chips.textContent = "";
  for (const t of texts) chips.append(el("li", { text: t }));
  const list = $("attach-suggestions");
  list.textContent = "";
  list.append(el("li", { class: "muted", text: "正在查找相近的知识条目…" }));
  showError($("attach-error"), "");
  $("attach-ok").disabled = true;
  modal.classList.remove("hidden");
  try {
    const data = await api("POST", "/api/kb/unanswered/suggest", { question });
    list.textContent = "";
    if (data.items.length === 0) list.append(el("li", { class: "muted", text: "没有相近的知识条目，请新建知识条目。" }));
    for (const s of data.items) {
      list.append(el("li", { "data-testid": "attach-suggestion" }, el("label", null,
        el("input", { type: "radio", name: "attach-entry", value: s.entry_id, onchange: () => { $("attach-ok").disabled = false; } }),
        el("span", { text: s.question }),
        el("span", { class: "muted", text: `${s.branch} · ${(STATUS[s.status] || [s.status])[0]} · 相似度 ${Math.round(s.score * 100)}%` }))));
    }
  } catch (e) {
    list.textContent = "";
    showError($("attach-error"), e.reason);
  }
}
$("attach-cancel").addEventListener("click", () => $("attach-modal").classList.add("hidden"));
$("attach-ok").addEventListener("click", async () => {
  const chosen = document.querySelector('input[name="attach-entry"]:checked');
  if (!chosen) return;
  try {
    const entry = await api("POST", "/api/kb/unanswered/attach", { entry_id: chosen.value, questions: attachTexts });
    $("attach-modal").classList.add("hidden");
    toast(`已添加到“${entry.question}”的相似问法`);
    loadUnanswered();
  } catch (e) {
    showError($("attach-error"), e.reason);
  }
});
$("ua-refresh").addEventListener("click", loadUnanswered);
$("ua-days").addEventListener("change", loadUnanswered);

/* ------------------------------------------------------------------ import / export */

$("import-file").addEventListener("change", () => { $("import-start").disabled = !$("import-file").files.length; });

function importStatus(text, cls = "") {
  const node = $("import-status");
  node.textContent = text;
  node.className = `import-status ${cls}`;
}

function showImportErrors(errors) {
  const table = $("import-errors");
  const rows = $("import-error-rows");
  rows.textContent = "";
  for (const e of errors) {
    rows.append(el("tr", { "data-testid": "import-error-row", dataset: { row: String(e.row) } },
      el("td", { class: "num", text: String(e.row) }), el("td", { text: e.reason })));
  }
  table.classList.toggle("hidden", errors.length === 0);
}

$("import-start").addEventListener("click", async () => {
  const file = $("import-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  if ($("import-create-branches").checked) form.append("create_branches", "1");
  const bar = $("import-progress");
  bar.value = 0;
  bar.classList.remove("hidden");
  showImportErrors([]);
  importStatus("正在上传…");
  $("import-start").disabled = true;
  try {
    const job = await api("POST", "/api/kb/imports", undefined, { form });
    await pollImport(job.id);
  } catch (e) {
    bar.classList.add("hidden");
    importStatus(e.reason, "error");
  } finally {
    $("import-start").disabled = !$("import-file").files.length;
  }
});

async function pollImport(id) {
  const bar = $("import-progress");
  for (;;) {
    const job = await api("GET", `/api/kb/imports/${encodeURIComponent(id)}`);
    const total = job.total || 1;
    if (job.state === "done") {
      bar.value = 100;
      const r = job.report;
      importStatus(`导入成功：新增 ${r.created} 个知识条目（其中已发布 ${r.published} 个）`
        + (r.created_branches.length ? `，新建知识分类：${r.created_branches.join("、")}` : "") + "。", "ok");
      state.offset = 0;
      loadBranches();
      load();
      loadEditors();
      return;
    }
    if (job.state === "failed") {
      bar.classList.add("hidden");
      const r = job.report || {};
      const errors = r.errors || [];
      importStatus(errors.length ? `导入失败：有 ${errors.length} 行存在错误，没有导入任何内容。请修改后重新导入。`
        : (r.reason || "导入失败，没有导入任何内容。"), "error");
      showImportErrors(errors);
      return;
    }
    const pct = job.stage === "writing" ? 10 + Math.round((90 * job.done) / total) : 5;
    bar.value = pct;
    importStatus(job.stage === "writing" ? `正在导入… ${job.done} / ${job.total}` : `正在检查 ${job.total} 行…`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function updateExportLink() {
  const params = new URLSearchParams({ format: $("export-format").value });
  if ($("export-branch").value) params.set("branch_id", $("export-branch").value);
  if ($("export-status").value) params.set("status", $("export-status").value);
  $("export-go").href = `/api/kb/export?${params}`;
}
for (const id of ["export-branch", "export-status", "export-format"]) $(id).addEventListener("change", updateExportLink);

/* ------------------------------------------------------------------ 更新机器人模型 */

function retrainLine(job) {
  const secs = Math.round(job.elapsed || 0);
  if (job.running) {
    const pct = Number.isFinite(job.percent) ? `${job.percent}% · ` : "";
    return `${job.message || job.stage_label || "正在更新…"}（${pct}已用时 ${secs} 秒）`;
  }
  const nodes = job.nodes || [];
  if (nodes.length > 1 && job.stage === "done") {
    const ok = nodes.filter((n) => n.ok).length;
    return `${job.message || ""}（${nodes.length} 个机器人节点，${ok} 个已生效）`;
  }
  return job.message || "";
}

/* The bar beside the status text: the job's percent while it runs, hidden otherwise. */
function retrainBar(job) {
  let bar = $("retrain-progress");
  if (!bar) {
    bar = document.createElement("progress");
    bar.id = "retrain-progress";
    bar.max = 100;
    bar.dataset.testid = "retrain-progress";
    bar.style.width = "120px";
    $("retrain-status").before(bar);
  }
  bar.hidden = !job.running;
  bar.value = job.percent || 0;
  bar.title = job.train && job.train.epochs ? `第 ${job.train.epoch}/${job.train.epochs} 轮` : "";
  bar.setAttribute("aria-label", `更新机器人模型进度 ${job.percent || 0}%`);
}

let retrainTimer = null;
async function pollRetrain() {
  clearTimeout(retrainTimer);
  let job;
  try {
    job = await api("GET", "/api/kb/retrain");
  } catch (e) {
    $("retrain-status").textContent = e.reason;
    $("retrain-start").disabled = false;
    return;
  }
  const node = $("retrain-status");
  node.textContent = job.stage === "idle" ? "" : retrainLine(job);
  node.dataset.stage = job.stage;
  node.dataset.percent = job.percent ?? "";
  node.title = (job.nodes || []).map((n) => `${n.url}：${n.message}`).join("\n");
  retrainBar(job);
  node.style.color = job.stage === "failed" ? "var(--red)" : job.stage === "done" ? "var(--green)" : "";
  $("retrain-start").disabled = Boolean(job.running);
  if (job.running) retrainTimer = setTimeout(pollRetrain, 1000);
}

$("retrain-start").addEventListener("click", async () => {
  $("retrain-start").disabled = true;
  $("retrain-status").textContent = "正在开始…";
  try {
    await api("POST", "/api/kb/retrain", {});
  } catch (e) {
    $("retrain-status").textContent = e.reason;  // 409: another update is running
  }
  pollRetrain();
});

/* ------------------------------------------------------------------ start */

initStaffHeader("/kb");
loadBranches().then(() => {
  load();
  updateExportLink();
});
loadEditors();
pollRetrain();
const initial = location.hash.replace("#", "");
if (["unanswered", "preview", "transfer"].includes(initial)) showTab(initial);
