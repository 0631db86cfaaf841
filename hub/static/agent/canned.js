// 快捷回复: the "/" list in the reply box and the 管理快捷回复 dialog.
import { el, jsonRequest } from "/static/common.js";
import { insertIntoReply } from "/static/agent/composer.js";
import { closeModal, openModal, showDialogError } from "/static/agent/dialogs.js";
import { $, state, toast, ui } from "/static/agent/state.js";

/* 快捷回复: "/" in the reply box (or the button) opens a searchable list */

export function onSlashInput() {
  if (state.mode !== "reply") return;
  const m = /^\/(\S{0,20})$/.exec(ui.input.value);
  if (m) openCanned(true, m[1]);
  else if (state.canned.open && state.canned.fromSlash) closeCanned();
}

export function openCanned(fromSlash, query) {
  const conv = state.convs.get(state.selected);
  if (!conv || conv.ended) return;
  const c = state.canned;
  c.fromSlash = fromSlash;
  if (!c.open) {
    c.open = true;
    ui.cannedPanel.classList.remove("hidden");
  }
  ui.cannedSearch.classList.toggle("hidden", fromSlash);
  if (!fromSlash && query === undefined) ui.cannedSearch.value = "";
  clearTimeout(c.timer);
  c.timer = setTimeout(() => loadCanned(query ?? ui.cannedSearch.value), 120);
  if (!fromSlash) ui.cannedSearch.focus();
}

export function closeCanned() {
  const c = state.canned;
  clearTimeout(c.timer);
  c.seq += 1; // a search still on its way is dropped
  c.open = false;
  ui.cannedPanel.classList.add("hidden");
}

async function fetchCanned(query, convId) {
  const params = new URLSearchParams({ q: query || "" });
  if (convId) params.set("conversation_id", convId);
  const resp = await fetch(`/api/handoff/canned?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.reason || "快捷回复加载失败，请稍后再试");
  return Array.isArray(data.items) ? data.items : [];
}

async function loadCanned(query) {
  const c = state.canned;
  const seq = ++c.seq;
  const conv = state.convs.get(state.selected);
  let items;
  try {
    items = await fetchCanned(query, conv && !conv.ended ? conv.id : null);
  } catch (err) {
    if (seq === c.seq) toast(err.message);
    return;
  }
  if (seq !== c.seq || !c.open) return; // a newer search won, or the list was closed
  c.items = items;
  c.index = 0;
  renderCannedList();
}

function renderCannedList() {
  const c = state.canned;
  ui.cannedList.textContent = "";
  c.items.forEach((item, index) => {
    const li = el("li", {
      class: "canned-item",
      role: "option",
      "data-testid": "canned-item",
      "aria-selected": index === c.index ? "true" : "false",
      dataset: { id: String(item.id), shortcut: item.shortcut },
      onmousedown: (ev) => ev.preventDefault(), // keep the focus in the reply box
      onclick: () => insertCanned(item),
    },
      el("div", { class: "ci-head" },
        el("span", { class: "ci-shortcut", text: `/${item.shortcut}` }),
        el("span", { class: "ci-title", text: item.title }),
        el("span", { class: `tag ${item.scope === "shared" ? "tag-gray" : "tag-green"}`, text: item.scope === "shared" ? "公共" : "个人" })),
      el("div", { class: "ci-text", text: item.rendered ?? item.text }));
    ui.cannedList.append(li);
  });
  ui.cannedEmpty.classList.toggle("hidden", c.items.length > 0);
  const current = ui.cannedList.children[c.index];
  if (current) current.scrollIntoView({ block: "nearest" });
}

function insertCanned(item) {
  const fromSlash = state.canned.fromSlash;
  closeCanned();
  insertIntoReply(item.rendered ?? item.text, fromSlash);
}

/** Arrow keys, Enter and Esc while the list is open; true when the key was used. */
export function cannedKey(ev) {
  const c = state.canned;
  if (ev.isComposing || ev.keyCode === 229) return false;
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    if (!c.items.length) return false;
    ev.preventDefault();
    c.index = (c.index + (ev.key === "ArrowDown" ? 1 : -1) + c.items.length) % c.items.length;
    renderCannedList();
    return true;
  }
  if ((ev.key === "Enter" || ev.key === "Tab") && c.items.length) {
    ev.preventDefault();
    insertCanned(c.items[c.index]);
    return true;
  }
  if (ev.key === "Escape") {
    ev.preventDefault();
    closeCanned();
    ui.input.focus();
    return true;
  }
  return false;
}

/* 管理快捷回复: my own and (supervisors) the shared ones */

export async function openCannedManager() {
  closeCanned();
  resetCannedForm();
  const canShare = !!state.me && (state.me.role === "supervisor" || state.me.role === "admin");
  ui.cannedScope.querySelector('option[value="shared"]').disabled = !canShare;
  openModal(ui.cannedDialog, ui.cannedShortcut);
  await refreshCannedManager();
}

async function refreshCannedManager() {
  let items;
  try {
    items = await fetchCanned("", null);
  } catch (err) {
    showDialogError(ui.cannedError, err.message);
    return;
  }
  ui.cannedManageList.textContent = "";
  for (const item of items) {
    const del = item.editable ? el("button", {
      class: "btn btn-sm btn-danger", type: "button", "data-testid": "canned-delete",
      onclick: (ev) => deleteCanned(item, ev.currentTarget),
    }, "删除") : null;
    ui.cannedManageList.append(el("li", { class: "canned-manage-item", "data-testid": "canned-manage-item", dataset: { id: String(item.id), shortcut: item.shortcut } },
      el("div", { class: "ci-head" },
        el("span", { class: "ci-shortcut", text: `/${item.shortcut}` }),
        el("span", { class: "ci-title", text: item.title }),
        el("span", { class: `tag ${item.scope === "shared" ? "tag-gray" : "tag-green"}`, text: item.scope === "shared" ? "公共" : "个人" }),
        el("span", { class: "spacer" }),
        item.editable ? el("button", { class: "btn btn-sm", type: "button", "data-testid": "canned-edit", onclick: () => editCanned(item) }, "编辑") : null,
        del),
      el("div", { class: "ci-text", text: item.text })));
  }
  if (!items.length) ui.cannedManageList.append(el("li", { class: "empty", text: "还没有快捷回复" }));
}

export function resetCannedForm() {
  state.canned.editing = null;
  ui.cannedFormTitle.textContent = "新增快捷回复";
  ui.cannedScope.disabled = false;
  ui.cannedScope.value = "personal";
  ui.cannedShortcut.value = "";
  ui.cannedTitle.value = "";
  ui.cannedText.value = "";
  showDialogError(ui.cannedError, "");
}

function editCanned(item) {
  state.canned.editing = item.id;
  ui.cannedFormTitle.textContent = `编辑快捷回复 /${item.shortcut}`;
  ui.cannedScope.value = item.scope;
  ui.cannedScope.disabled = true; // a reply does not move between 公共 and 个人
  ui.cannedShortcut.value = item.shortcut;
  ui.cannedTitle.value = item.title;
  ui.cannedText.value = item.text;
  showDialogError(ui.cannedError, "");
  ui.cannedText.focus();
}

export async function saveCanned(ev) {
  ev.preventDefault();
  const editing = state.canned.editing;
  const body = { shortcut: ui.cannedShortcut.value, title: ui.cannedTitle.value, text: ui.cannedText.value };
  if (!editing) body.scope = ui.cannedScope.value;
  try {
    const url = editing ? `/api/handoff/canned/${editing}` : "/api/handoff/canned";
    const resp = await jsonRequest(editing ? "PUT" : "POST", url, body);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) { showDialogError(ui.cannedError, data.reason || "保存失败，请稍后再试"); return; }
  } catch (_) {
    showDialogError(ui.cannedError, "网络异常，保存失败，请稍后再试");
    return;
  }
  toast(editing ? "快捷回复已更新" : "快捷回复已添加");
  resetCannedForm();
  await refreshCannedManager();
}

/** Delete after a second click on the same button ("确认删除？"). */
async function deleteCanned(item, button) {
  if (button.dataset.confirm !== "1") {
    button.dataset.confirm = "1";
    button.textContent = "确认删除？";
    return;
  }
  const resp = await fetch(`/api/handoff/canned/${item.id}`, { method: "DELETE", credentials: "same-origin" }).catch(() => null);
  if (!resp || !resp.ok) {
    const data = resp ? await resp.json().catch(() => ({})) : {};
    showDialogError(ui.cannedError, data.reason || "删除失败，请稍后再试");
    return;
  }
  if (state.canned.editing === item.id) resetCannedForm();
  toast("快捷回复已删除");
  await refreshCannedManager();
}

export function hideCannedDialog() {
  closeModal(ui.cannedDialog);
}
