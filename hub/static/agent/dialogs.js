// The 结束会话 and 转接 dialogs, 转回机器人, and the in-page modal helpers they share.
import { el } from "/static/common.js";
import { $, PRESENCE_LABEL, sendFrame, state, ui } from "/static/agent/state.js";
import { renderConversation, renderTabs } from "/static/agent/transcript.js";

/* ------------------------------------------------------------------ dialogs */

let dialogReturnFocus = null;

export function openModal(node, focus) {
  dialogReturnFocus = document.activeElement;
  node.classList.remove("hidden");
  if (focus) focus.focus();
}

export function closeModal(node) {
  node.classList.add("hidden");
  if (dialogReturnFocus && typeof dialogReturnFocus.focus === "function" && document.contains(dialogReturnFocus)) {
    dialogReturnFocus.focus();
  }
  dialogReturnFocus = null;
}

export function showDialogError(node, text) {
  node.textContent = text;
  node.classList.toggle("hidden", !text);
}

// 结束会话 and 转回机器人 both end my part of the conversation: both ask how it ended and for a summary.
const WRAP_UP = {
  close: { frame: "close", title: "结束会话", ok: "结束会话", sending: "正在结束…", hint: "" },
  return: {
    frame: "return_to_bot", title: "转回机器人", ok: "转回机器人", sending: "正在转回…",
    hint: "市民将回到智能客服，可以继续提问；本次人工服务按下面的处理结果记录。",
  },
};

export function closeConversation() {
  openWrapUp("close");
}

export function returnToBot() {
  openWrapUp("return");
}

function openWrapUp(kind) {
  const conv = state.convs.get(state.selected);
  if (!conv || conv.ended || conv.busy) return;
  const wrap = WRAP_UP[kind];
  state.closing = { convId: conv.id, sent: false, kind };
  ui.closeDialog.dataset.kind = kind;
  ui.closeDisposition.value = "resolved";
  ui.closeSummary.value = "";
  showDialogError(ui.closeError, "");
  ui.closeHint.textContent = wrap.hint;
  ui.closeHint.classList.toggle("hidden", !wrap.hint);
  resetCloseOk();
  ui.closeTitle.textContent = `${wrap.title}：${conv.name}`;
  openModal(ui.closeDialog, ui.closeDisposition);
}

/** The dialog's confirm button as it is before anything is sent (or after the hub refused it). */
export function resetCloseOk() {
  const wrap = WRAP_UP[(state.closing && state.closing.kind) || "close"];
  ui.closeOk.disabled = false;
  ui.closeOk.textContent = wrap.ok;
}

export function submitClose(ev) {
  ev.preventDefault();
  const pending = state.closing;
  if (!pending || pending.sent) return;
  const conv = state.convs.get(pending.convId);
  if (!conv || conv.ended) { hideCloseDialog(); return; }
  const summary = ui.closeSummary.value.trim();
  if (summary.length > 1000) { showDialogError(ui.closeError, "服务小结不能超过 1000 字"); return; }
  const wrap = WRAP_UP[pending.kind || "close"];
  const frame = { type: wrap.frame, conversation_id: conv.id, disposition: ui.closeDisposition.value, summary };
  if (!sendFrame(frame)) { showDialogError(ui.closeError, "与服务器的连接已断开，请稍后再试"); return; }
  pending.sent = true;
  conv.busy = true; // wait for "closed"
  ui.closeOk.disabled = true;
  ui.closeOk.textContent = wrap.sending;
  showDialogError(ui.closeError, "");
  if (state.selected === conv.id) renderConversation(false);
}

export function hideCloseDialog() {
  state.closing = null;
  closeModal(ui.closeDialog);
}

export function openTransfer() {
  const conv = state.convs.get(state.selected);
  if (!conv || conv.ended || conv.busy) return;
  state.transfer = { convId: conv.id, label: "", sent: false };
  ui.transferMemo.value = "";
  showDialogError(ui.transferError, "");
  ui.transferTitle.textContent = `转接会话：${conv.name}`;
  renderTransferTargets();
  sendFrame({ type: "agents" }); // fresh presence and loads for the list
  openModal(ui.transferDialog, ui.transferTarget);
}

function renderTransferTargets() {
  const sel = ui.transferTarget;
  const previous = sel.value;
  sel.textContent = "";
  const data = state.colleagues;
  if (!data) {
    sel.append(el("option", { value: "" }, "正在加载坐席列表…"));
    updateTransferControls();
    return;
  }
  sel.append(el("option", { value: "" }, "请选择坐席或技能组"));
  const people = el("optgroup", { label: "坐席" });
  const items = [...data.items].sort((a, b) => rankStatus(a.status) - rankStatus(b.status) || a.load - b.load);
  for (const a of items) {
    const status = PRESENCE_LABEL[a.status] || a.status;
    const full = Number(a.load) >= Number(a.capacity);
    const available = (a.status === "online" || a.status === "busy") && !full;
    const why = full ? "，已满" : "";
    people.append(el("option", {
      value: `agent:${a.username}`,
      disabled: !available,
      dataset: { label: a.display_name || a.username, status: a.status },
    }, `${a.display_name || a.username}（${status}，接待 ${a.load}/${a.capacity}${why}）`));
  }
  if (!items.length) people.append(el("option", { value: "", disabled: true }, "暂无其他坐席"));
  sel.append(people);
  const groups = el("optgroup", { label: "技能组" });
  for (const g of data.groups || []) {
    groups.append(el("option", { value: `group:${g}`, dataset: { label: `${g}技能组` } }, `${g}技能组（排到队首）`));
  }
  sel.append(groups);
  const still = [...sel.options].find((o) => o.value === previous && !o.disabled);
  sel.value = still ? previous : "";
  updateTransferControls();
}

function rankStatus(s) {
  return { online: 0, busy: 1, away: 2, offline: 3 }[s] ?? 4;
}

export function updateTransferControls() {
  const sending = !!(state.transfer && state.transfer.sent);
  ui.transferOk.disabled = sending || !ui.transferTarget.value;
  ui.transferOk.textContent = sending ? "正在转接…" : "确认转接";
  ui.transferTarget.disabled = sending;
  ui.transferMemo.disabled = sending;
}

export function submitTransfer(ev) {
  ev.preventDefault();
  const pending = state.transfer;
  if (!pending || pending.sent) return;
  const conv = state.convs.get(pending.convId);
  if (!conv || conv.ended) { hideTransferDialog(); return; }
  const value = ui.transferTarget.value;
  if (!value) { showDialogError(ui.transferError, "请选择要转接的坐席或技能组"); return; }
  const memo = ui.transferMemo.value.trim();
  if (memo.length > 500) { showDialogError(ui.transferError, "转接备注不能超过 500 字"); return; }
  const [kind, ...rest] = value.split(":");
  const target = rest.join(":");
  const frame = { type: "transfer", conversation_id: conv.id, memo };
  if (kind === "agent") frame.to_agent = target; else frame.to_group = target;
  if (!sendFrame(frame)) { showDialogError(ui.transferError, "与服务器的连接已断开，请稍后再试"); return; }
  const option = ui.transferTarget.selectedOptions[0];
  pending.label = (option && option.dataset.label) || target;
  pending.sent = true;
  showDialogError(ui.transferError, "");
  updateTransferControls();
}

export function hideTransferDialog() {
  state.transfer = null;
  closeModal(ui.transferDialog);
}

export function handleAgents(frame) {
  state.colleagues = {
    items: Array.isArray(frame.items) ? frame.items : [],
    groups: Array.isArray(frame.groups) ? frame.groups : [],
  };
  if (state.transfer && !state.transfer.sent) renderTransferTargets();
}

