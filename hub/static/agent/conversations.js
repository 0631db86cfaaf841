// My conversations: what the hub's frames (assigned, message, ack, closed, transferred, error, sync) do to them,
// and choosing the tab being worked on.
import { rememberedMode, rememberSelected } from "/static/agent/persist.js";
import { uuid } from "/static/common.js";
import { beep } from "/static/agent/beep.js";
import { closeCanned } from "/static/agent/canned.js";
import { restorePendingNote, setMode, stopTypingSignal } from "/static/agent/composer.js";
import { hideCloseDialog, resetCloseOk, hideTransferDialog, showDialogError, updateTransferControls } from "/static/agent/dialogs.js";
import { failAccepts } from "/static/agent/queue.js";
import { countsAsUnread, isNote, isWhisper } from "/static/agent/staff_only.js";
import { $, ACCEPT_ERRORS, CLOSED_TEXT, REPLY_ERRORS, state, toast, tsOf, ui } from "/static/agent/state.js";
import { renderConversation, renderTabs } from "/static/agent/transcript.js";

/* ------------------------------------------------------------ conversations */

function newConversation(id) {
  return {
    id,
    messages: new Map(),   // message id -> Message
    local: [],             // optimistic replies: {clientId, text, created_at, state, reason, timer}
    screenPop: null,
    unread: 0,
    ended: false,
    endText: "",
    busy: false,
    name: "访客",
    channel: null,
    memo: null,            // {text, from}: the colleague's 转接备注
    group: null,
    assist: null,          // the last "assist" frame: KB answers for the citizen's last message
    citizenTyping: 0,      // when the citizen's last typing signal came (0: not typing)
    typingTimer: null,
    assignedSeq: 0,        // the socket whose "assigned" frame last confirmed it mine
    mode: rememberedMode(id), // the reply box sends a reply or an 内部备注 (kept per conversation)
  };
}

function convLabel(conv) {
  const c = conv.screenPop && conv.screenPop.citizen;
  const q = state.queueInfo.get(conv.id);
  return (c && c.name) || (q && q.citizen_name) || "访客";
}

export function convChannel(conv) {
  const c = conv.screenPop && conv.screenPop.citizen;
  const q = state.queueInfo.get(conv.id);
  return (c && c.channel) || (q && q.channel) || null;
}

function addMessage(conv, msg) {
  if (!msg) return false;
  const key = msg.id != null ? String(msg.id) : `local-${uuid()}`;
  const isNew = !conv.messages.has(key);
  conv.messages.set(key, msg);
  // An echo of one of my replies confirms the optimistic bubble.
  if (msg.sender === "agent") {
    const cid = msg.meta && msg.meta.client_id;
    let idx = cid ? conv.local.findIndex((l) => l.clientId === cid) : -1;
    if (idx < 0) idx = conv.local.findIndex((l) => l.state !== "failed" && l.text === msg.text);
    if (idx >= 0) {
      clearTimeout(conv.local[idx].timer);
      conv.local.splice(idx, 1);
    }
  }
  return isNew;
}

export function handleAssigned(frame) {
  const id = String(frame.conversation_id);
  let conv = state.convs.get(id);
  const known = !!conv;
  if (!conv) {
    conv = newConversation(id);
    state.convs.set(id, conv);
  }
  conv.assignedSeq = state.socketSeq;
  conv.ended = false;
  conv.endText = "";
  conv.busy = false;
  if (frame.screen_pop) conv.screenPop = frame.screen_pop;
  conv.memo = frame.memo && frame.memo.text ? { text: String(frame.memo.text), from: frame.memo.from || "" } : null;
  conv.group = frame.group || null;
  const transferredIn = frame.transition === "transfer" && !state.pendingAccepts.has(id);
  let missed = 0; // after a reconnect: what the citizen wrote while this console was away
  for (const msg of frame.transcript || []) {
    if (addMessage(conv, msg) && known && countsAsUnread(msg)) missed += 1;
  }
  if (missed > 0 && (state.selected !== id || document.hidden)) {
    conv.unread += missed;
    beep();
  }
  for (const msg of state.orphans.get(id) || []) addMessage(conv, msg);
  state.orphans.delete(id);
  conv.name = convLabel(conv);
  conv.channel = convChannel(conv);
  const mine = state.pendingAccepts.delete(id);
  if (transferredIn) {
    toast(conv.memo && conv.memo.from ? `${conv.memo.from} 向您转接了一个会话` : "您收到一个转接的会话");
    beep();
  } else if (frame.auto) {
    toast("系统为您分配了一个新会话");
    beep();
  }
  const reopen = state.reopen === id; // the tab worked on before a reload comes back selected
  if (reopen) state.reopen = null;
  if (mine || reopen || !state.selected) select(id);
  else {
    if (transferredIn || frame.auto) conv.unread = Math.max(conv.unread, 1);
    renderTabs();
  }
  if (state.selected === id) renderConversation(true);
}

export function handleMessage(msg) {
  if (!msg || msg.conversation_id == null) return;
  const id = String(msg.conversation_id);
  const conv = state.convs.get(id);
  if (!conv) {
    const list = state.orphans.get(id) || [];
    list.push(msg);
    state.orphans.set(id, list.slice(-200));
    return;
  }
  const isNew = addMessage(conv, msg);
  const background = state.selected !== id || document.hidden;
  if (isNew && background && countsAsUnread(msg)) conv.unread += 1;
  if (isNew && msg.sender === "citizen") {
    conv.citizenTyping = 0; // the message they were typing has arrived
    if (background) beep();
  }
  if (isNew && isWhisper(msg)) toast(`${msg.sender_name || "班长"} 发来悄悄话（仅坐席可见）`);
  if (isNew && isNote(msg) && state.me && msg.sender_name !== state.me.display_name) {
    toast(`${msg.sender_name || "同事"} 添加了内部备注`);
  }
  renderTabs();
  if (state.selected === id) renderConversation(false);
}

/** The hub acknowledges a stored reply: {"type":"ack","client_id","message"}. */
export function handleAck(frame) {
  const msg = frame.message;
  for (const conv of state.convs.values()) {
    const idx = conv.local.findIndex((l) => l.clientId === frame.client_id);
    if (idx >= 0) {
      clearTimeout(conv.local[idx].timer);
      conv.local.splice(idx, 1);
    }
  }
  if (msg) handleMessage(msg);
  else if (state.selected) renderConversation(false);
}

export function handleClosed(frame) {
  const id = String(frame.conversation_id);
  const conv = state.convs.get(id);
  if (!conv) return;
  conv.ended = true;
  conv.busy = false;
  const transferring = state.transfer && state.transfer.convId === id ? state.transfer : null;
  if (transferring && transferring.sent && transferring.label) conv.endText = `已转接给 ${transferring.label}`;
  if (!conv.endText) conv.endText = frame.take_over ? "班长已接管" : CLOSED_TEXT[frame.transition] || "会话已结束";
  if (state.closing && state.closing.convId === id) hideCloseDialog();
  if (transferring) hideTransferDialog();
  renderTabs();
  if (state.selected === id) renderConversation(false);
}

/** The hub confirms my 转接: {"type":"transferred","conversation_id","to_agent_id"|"to_group"}. */
export function handleTransferred(frame) {
  const id = String(frame.conversation_id);
  const conv = state.convs.get(id);
  let label = frame.to_group ? `${frame.to_group}技能组` : "";
  if (state.transfer && state.transfer.convId === id) {
    label = state.transfer.label || label;
    hideTransferDialog();
  }
  if (!conv) return;
  conv.ended = true;
  conv.busy = false;
  if (label) conv.endText = `已转接给 ${label}`;
  else if (!conv.endText) conv.endText = "会话已转出";
  toast(conv.endText);
  renderTabs();
  if (state.selected === id) renderConversation(false);
}

/** Mark a waiting reply failed: by client_id when given, else the oldest one waiting. Returns true if found. */
function failReply(clientId, convId, reason) {
  for (const conv of state.convs.values()) {
    if (convId && conv.id !== convId) continue;
    const idx = clientId
      ? conv.local.findIndex((l) => l.clientId === clientId)
      : conv.local.findIndex((l) => l.state === "pending");
    if (idx >= 0) {
      const l = conv.local[idx];
      clearTimeout(l.timer);
      l.state = "failed";
      l.reason = reason;
      if (state.selected === conv.id) renderConversation(false);
      return true;
    }
  }
  return false;
}

function releaseBusy(convId) {
  for (const conv of state.convs.values()) {
    if (convId && conv.id !== convId) continue;
    if (conv.busy) conv.busy = false;
  }
  if (state.selected) renderConversation(false);
}

// The hub's error frames carry {reason, code} only; frames on one socket are answered in order.
export function handleError(frame) {
  const reason = frame.reason || "操作失败，请稍后再试";
  const code = frame.code || "";
  const convId = frame.conversation_id != null ? String(frame.conversation_id) : null;
  if (state.pendingNote && (code.startsWith("note_") || code === "not_yours")) {
    restorePendingNote();
    toast(reason);
    return;
  }
  if (state.transfer && state.transfer.sent && !frame.client_id) {
    state.transfer.sent = false;
    showDialogError(ui.transferError, reason);
    updateTransferControls();
    return;
  }
  if (state.closing && state.closing.sent && !frame.client_id) {
    state.closing.sent = false;
    const conv = state.convs.get(state.closing.convId);
    if (conv) conv.busy = false;
    showDialogError(ui.closeError, reason);
    resetCloseOk();
    if (conv && state.selected === conv.id) renderConversation(false);
    return;
  }
  if (ACCEPT_ERRORS.has(code) && state.pendingAccepts.size > 0) {
    failAccepts(convId);
  } else if (REPLY_ERRORS.has(code) && failReply(frame.client_id || null, convId, reason)) {
    // marked on the bubble
  } else if (state.pendingAccepts.size > 0 && !frame.client_id) {
    failAccepts(convId);
  } else {
    releaseBusy(convId);
  }
  toast(reason);
}

/* ------------------------------------------------------------------ actions */

export function select(id) {
  if (state.selected && state.selected !== id) state.drafts.set(state.selected, ui.input.value);
  if (state.selected !== id) { stopTypingSignal(); closeCanned(); }
  const changed = state.selected !== id;
  state.selected = id;
  const conv = state.convs.get(id);
  if (conv) conv.unread = 0;
  if (changed) {
    ui.input.value = state.drafts.get(id) || "";
    rememberSelected(id);
    // 内部备注 belongs to the conversation it was chosen in: another one opens as it was left (a reply by default)
    setMode(conv && conv.mode === "note" ? "note" : "reply");
  }
  renderTabs();
  renderConversation(true);
  if (conv && !conv.ended) ui.input.focus();
}

export function dismiss(id) {
  state.convs.delete(id);
  state.drafts.delete(id);
  if (state.selected === id) {
    state.selected = null;
    rememberSelected(null);
    const next = [...state.convs.keys()][0];
    if (next) { select(next); return; }
    ui.input.value = "";
  }
  renderTabs();
  renderConversation(true);
}

/* reconnecting: the hub lists the conversations still mine before it resends each one */

export function handleSync(frame) {
  const mine = new Set((Array.isArray(frame.conversation_ids) ? frame.conversation_ids : []).map(String));
  let changed = false;
  for (const conv of state.convs.values()) {
    if (conv.ended || mine.has(conv.id) || conv.assignedSeq === state.socketSeq) continue;
    conv.ended = true;
    conv.busy = false;
    conv.endText = "会话已不在您的接待列表中";
    changed = true;
  }
  if (changed) {
    renderTabs();
    if (state.selected) renderConversation(false);
  }
}

/** The 客户信息 panel saved the citizen's profile: a new name shows on their tabs and header at once. */
export function citizenSaved(citizen) {
  if (!citizen || citizen.id == null) return;
  for (const conv of state.convs.values()) {
    const c = conv.screenPop && conv.screenPop.citizen;
    if (!c || String(c.id) !== String(citizen.id)) continue;
    if (c !== citizen) Object.assign(c, citizen);
    conv.name = convLabel(conv);
  }
  renderTabs();
  if (state.selected) renderConversation(false);
}

const LEFT_GRACE_MS = 5000; // a reload closes and reopens the page: only a page gone this long means "left"
const WECHAT_WINDOW_MS = 48 * 3600 * 1000; // WeChat lets the bureau answer only within 48 h of the citizen's last message

/** The hub says the citizen's chat page closed (present false) or is open again. */
export function handleCitizenPresence(frame) {
  const conv = state.convs.get(String(frame.conversation_id));
  if (!conv) return;
  clearTimeout(conv.leftTimer);
  if (frame.present) {
    if (!conv.citizenLeft) return;
    conv.citizenLeft = false;
  } else {
    conv.leftTimer = setTimeout(() => {
      conv.citizenLeft = true;
      renderTabs();
      if (state.selected === conv.id) renderConversation(false);
    }, LEFT_GRACE_MS);
    return;
  }
  renderTabs();
  if (state.selected === conv.id) renderConversation(false);
}

/** Why the citizen may not read a reply now, or "" (they are there as far as the hub knows). */
export function absenceText(conv) {
  if (!conv || conv.ended) return "";
  if (conv.citizenLeft) return "市民已离开";
  if (conv.channel === "wechat") {
    let last = 0;
    for (const m of conv.messages.values()) if (m.sender === "citizen") last = Math.max(last, tsOf(m.created_at));
    if (last && Date.now() - last > WECHAT_WINDOW_MS) return "市民超过 48 小时未发消息，微信已无法回复";
  }
  return "";
}
