// Agent console: speaks the /ws/agent protocol (docs/design.md, "Agent console WebSocket").
import {
  keepStaffSocket, staffSocketState,
  showToast, sendJson, jsonRequest, uuid, el, formatTime, formatWaiting, appendLinkified, channelLabel, initStaffHeader, toMillis,
} from "/static/common.js";
import { messageBody } from "/static/attachments.js";

const MAX_LEN = 2000; // the hub's limit for agent replies (handoff.console.MAX_REPLY_CHARS)
const REPLY_ACK_MS = 15000;
// Error codes the hub sends for a failed accept / for a failed reply.
const ACCEPT_ERRORS = new Set(["taken", "at_capacity"]);
const REPLY_ERRORS = new Set(["empty", "too_long", "not_yours", "forbidden_words"]);
const BASE_TITLE = "坐席工作台 - 政务云客服";
const NOTE_MAX = 1000; // handoff.notes.MAX_NOTE
const TYPING_SIGNAL_MS = 2000; // my typing reaches the citizen at most this often
const CITIZEN_TYPING_MS = 6000; // the citizen's "typing" fades without a fresh signal
const PRESENCE_LABEL = { online: "在线", busy: "忙碌", away: "离开", offline: "离线" };
// Where a conversation went when the hub says it is no longer mine ("closed" frame's transition).
const CLOSED_TEXT = {
  close: "会话已结束",
  return_to_bot: "已转回机器人",
  transfer: "会话已转出",
  transfer_to_group: "会话已转出",
  requeue: "会话已回到排队",
};

const $ = (id) => document.getElementById(id);
const ui = {
  queueList: $("queue-list"),
  queueEmpty: $("queue-empty"),
  queueCount: $("queue-count"),
  mine: $("my-convs"),
  mineEmpty: $("mine-empty"),
  mineCount: $("mine-count"),
  convEmpty: $("conv-empty"),
  convView: $("conv-view"),
  convName: $("conv-name"),
  convChannel: $("conv-channel"),
  convState: $("conv-state"),
  transcript: $("transcript"),
  input: $("reply-input"),
  send: $("reply-send"),
  counter: $("reply-counter"),
  closeBtn: $("close-conv"),
  returnBtn: $("return-bot"),
  transferBtn: $("transfer-conv"),
  presence: $("presence"),
  transferDialog: $("transfer-dialog"),
  transferForm: $("transfer-form"),
  transferTarget: $("transfer-target"),
  transferMemo: $("transfer-memo"),
  transferError: $("transfer-error"),
  transferOk: $("transfer-ok"),
  transferCancel: $("transfer-cancel"),
  closeDialog: $("close-dialog"),
  closeForm: $("close-form"),
  closeDisposition: $("close-disposition"),
  closeSummary: $("close-summary"),
  closeError: $("close-error"),
  closeOk: $("close-ok"),
  closeCancel: $("close-cancel"),
  closeTitle: $("close-title"),
  transferTitle: $("transfer-title"),
  pop: $("screen-pop"),
  banner: $("conn-banner"),
  dot: $("conn-dot"),
  toast: $("toast"),
  replyBox: $("reply-box"),
  modeReply: $("mode-reply"),
  modeNote: $("mode-note"),
  citizenTyping: $("citizen-typing"),
  cannedOpen: $("canned-open"),
  cannedPanel: $("canned-panel"),
  cannedSearch: $("canned-search"),
  cannedList: $("canned-list"),
  cannedEmpty: $("canned-empty"),
  cannedManage: $("canned-manage"),
  cannedDialog: $("canned-dialog"),
  cannedManageList: $("canned-manage-list"),
  cannedForm: $("canned-form"),
  cannedFormTitle: $("canned-form-title"),
  cannedScope: $("canned-scope"),
  cannedShortcut: $("canned-shortcut"),
  cannedTitle: $("canned-title-input"),
  cannedText: $("canned-text"),
  cannedError: $("canned-error"),
  cannedNew: $("canned-new"),
  cannedClose: $("canned-close"),
  assistFor: $("assist-for"),
  assistList: $("assist-list"),
  assistEmpty: $("assist-empty"),
};

const state = {
  ...staffSocketState(),
  queue: [],
  knownQueueIds: null,     // null until the first queue frame: no beep for what is already waiting
  waitStart: new Map(),    // conversation_id -> local epoch ms the wait started
  queueInfo: new Map(),    // conversation_id -> last queue item (channel, name) for later tabs
  convs: new Map(),        // conversation_id -> Conversation
  orphans: new Map(),      // conversation_id -> [Message] that arrived before "assigned"
  pendingAccepts: new Set(),
  selected: null,
  drafts: new Map(),       // conversation_id -> unsent reply text
  presence: null,          // my status as the hub last reported it
  colleagues: null,        // the last "agents" frame: {items, groups}
  transfer: null,          // {convId, label, sent} while the 转接 dialog is open
  closing: null,           // {convId, sent} while the 结束会话 dialog is open
  me: null,                // /api/me: {username, display_name, role}
  socketSeq: 0,            // which socket frames belong to (a "sync" frame concerns older tabs only)
  mode: "reply",           // the reply box sends a reply to the citizen or an 内部备注
  pendingNote: null,       // {convId, text, clientId} until the hub stores it
  typingConv: null,        // the conversation my typing was last signalled for
  typingSentAt: 0,
  canned: { items: [], index: 0, open: false, fromSlash: false, seq: 0, timer: null, editing: null, deleting: null },
};

/* ------------------------------------------------------------------ helpers */

function tsOf(value) {
  const t = toMillis(value);
  return Number.isNaN(t) ? Date.now() : t;
}

function toast(text) {
  showToast(ui.toast, text);
}

function sendFrame(frame) {
  return sendJson(state.ws, frame, toast);
}

/* --------------------------------------------------------------------- beep */

let audioCtx = null;
function unlockAudio() {
  try {
    if (!audioCtx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audioCtx = new Ctx();
    }
    if (audioCtx.state === "suspended") audioCtx.resume();
  } catch (_) { /* no audio */ }
}
document.addEventListener("pointerdown", unlockAudio, { once: false, passive: true });
document.addEventListener("keydown", unlockAudio, { passive: true });

function beep() {
  unlockAudio();
  if (!audioCtx || audioCtx.state !== "running") return;
  try {
    const now = audioCtx.currentTime;
    const osc = audioCtx.createOscillator();
    const gain = audioCtx.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, now);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.25);
    osc.connect(gain).connect(audioCtx.destination);
    osc.start(now);
    osc.stop(now + 0.3);
  } catch (_) { /* ignore */ }
}

/* -------------------------------------------------------------------- queue */

/** Local epoch ms at which an item started waiting. */
function waitingStart(item) {
  const secs = Number(item.waiting_seconds);
  if (item.waiting_seconds !== undefined && item.waiting_seconds !== null && Number.isFinite(secs)) {
    return Date.now() - secs * 1000;
  }
  const t = toMillis(item.waiting_since);
  return Number.isNaN(t) ? Date.now() : t;
}

function renderQueue(items) {
  const ids = new Set(items.map((it) => String(it.conversation_id)));
  const fresh = state.knownQueueIds ? [...ids].filter((id) => !state.knownQueueIds.has(id)) : [];
  state.knownQueueIds = ids;
  state.queue = items;
  // Update rows in place (keyed by conversation id) so a button under the pointer is never replaced.
  const existing = new Map();
  for (const li of ui.queueList.querySelectorAll(".queue-item")) {
    if (ids.has(li.dataset.conversationId)) existing.set(li.dataset.conversationId, li);
    else li.remove();
  }
  items.forEach((item, index) => {
    const id = String(item.conversation_id);
    state.queueInfo.set(id, item);
    let li = existing.get(id);
    if (!li) {
      li = buildQueueItem(id);
      if (fresh.includes(id)) li.classList.add("is-new");
    }
    fillQueueItem(li, item);
    if (ui.queueList.children[index] !== li) ui.queueList.insertBefore(li, ui.queueList.children[index] || null);
  });
  const n = items.length;
  ui.queueEmpty.classList.toggle("hidden", n > 0);
  ui.queueCount.textContent = String(n);
  if (n === 0) ui.queueCount.dataset.zero = ""; else delete ui.queueCount.dataset.zero;
  updateTitle();
  if (fresh.length > 0) beep();
}

function buildQueueItem(id) {
  return el("li", { class: "queue-item", "data-testid": "queue-item", dataset: { conversationId: id } },
    el("div", { class: "qi-head" },
      el("span", { class: "tag qi-channel" }),
      el("span", { class: "qi-name" })),
    el("span", { class: "wait", title: "等待时长" }),
    el("div", { class: "last-text" }),
    el("button", {
      class: "btn btn-primary btn-sm accept-btn",
      type: "button",
      "data-testid": "accept-btn",
      onclick: () => accept(id),
    }, "接入"));
}

function fillQueueItem(li, item) {
  const id = li.dataset.conversationId;
  li.dataset.channel = item.channel || "";
  li.querySelector(".qi-channel").textContent = channelLabel(item.channel);
  li.querySelector(".qi-name").textContent = item.citizen_name || "访客";
  const wait = li.querySelector(".wait");
  // Keep the first estimate unless it moved by more than 2 s, so the clock never jitters.
  const start = waitingStart(item);
  const known = state.waitStart.get(id);
  const since = known !== undefined && Math.abs(known - start) < 2000 ? known : start;
  state.waitStart.set(id, since);
  wait.dataset.since = String(since);
  wait.textContent = formatWaiting(since);
  const last = li.querySelector(".last-text");
  last.textContent = item.last_text || "（暂无消息）";
  last.title = item.last_text || "";
  const btn = li.querySelector(".accept-btn");
  const accepting = state.pendingAccepts.has(id);
  btn.disabled = accepting;
  btn.textContent = accepting ? "接入中…" : "接入";
}

function tickWaiting() {
  const now = Date.now();
  for (const node of ui.queueList.querySelectorAll(".wait[data-since]")) {
    node.textContent = formatWaiting(Number(node.dataset.since), now);
  }
}

function accept(id) {
  if (state.pendingAccepts.has(id)) return;
  if (!sendFrame({ type: "accept", conversation_id: id })) return;
  state.pendingAccepts.add(id);
  const btn = ui.queueList.querySelector(`.queue-item[data-conversation-id="${CSS.escape(id)}"] .accept-btn`);
  if (btn) { btn.disabled = true; btn.textContent = "接入中…"; }
  // If neither "assigned" nor "error" comes back, give the button back.
  setTimeout(() => {
    if (state.pendingAccepts.delete(id)) renderQueue(state.queue);
  }, 10000);
}

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
  };
}

function convLabel(conv) {
  const c = conv.screenPop && conv.screenPop.citizen;
  const q = state.queueInfo.get(conv.id);
  return (c && c.name) || (q && q.citizen_name) || "访客";
}

function convChannel(conv) {
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

function handleAssigned(frame) {
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
  if (mine || !state.selected) select(id);
  else {
    if (transferredIn || frame.auto) conv.unread = Math.max(conv.unread, 1);
    renderTabs();
  }
  if (state.selected === id) renderConversation(true);
}

function handleMessage(msg) {
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
function handleAck(frame) {
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

function handleClosed(frame) {
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
function handleTransferred(frame) {
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

function isWhisper(msg) {
  return !!(msg && msg.meta && typeof msg.meta === "object" && msg.meta.whisper);
}

function failAccepts(convId) {
  if (convId) state.pendingAccepts.delete(convId);
  else state.pendingAccepts.clear();
  renderQueue(state.queue);
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
function handleError(frame) {
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
    ui.closeOk.disabled = false;
    ui.closeOk.textContent = "结束会话";
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

/* ---------------------------------------------------------------- rendering */

function renderTabs() {
  ui.mine.textContent = "";
  let openCount = 0;
  for (const conv of state.convs.values()) {
    if (!conv.ended) openCount += 1;
    const last = lastMessage(conv);
    const li = el("li", {
      class: "conv-tab",
      role: "tab",
      tabindex: "0",
      "data-testid": "conv-tab",
      "aria-selected": state.selected === conv.id ? "true" : "false",
      dataset: { conversationId: conv.id, ended: conv.ended ? "true" : "false" },
      onclick: () => select(conv.id),
      onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(conv.id); } },
    },
      el("span", { class: "tag", text: channelLabel(conv.channel) }),
      el("div", { class: "ct-main" },
        el("div", { class: "ct-name", text: conv.name }),
        conv.citizenTyping && !conv.ended
          ? el("div", { class: "ct-last ct-typing", "data-testid": "tab-typing", text: "正在输入…" })
          : el("div", { class: "ct-last", text: conv.ended ? conv.endText : (last ? last.text : "") })),
      conv.unread > 0 ? el("span", { class: "badge unread", "data-testid": "unread", text: String(conv.unread) }) : null,
      conv.ended ? el("button", {
        class: "conv-dismiss",
        type: "button",
        title: "移除",
        "aria-label": "移除该会话",
        onclick: (ev) => { ev.stopPropagation(); dismiss(conv.id); },
      }, "×") : null);
    ui.mine.append(li);
  }
  ui.mineEmpty.classList.toggle("hidden", state.convs.size > 0);
  ui.mineCount.textContent = String(openCount);
  updateTitle();
}

function lastMessage(conv) {
  let last = null;
  for (const m of conv.messages.values()) {
    if (isInternal(m)) continue;
    if (!last || tsOf(m.created_at) >= tsOf(last.created_at)) last = m;
  }
  return last;
}

const LABEL = { bot: "机器人", citizen: "市民", agent: "坐席", system: "系统" };

/** One transcript line; `m` is the message ({text, meta}) whose body (text, file) is shown. */
function buildMsg(sender, name, m, createdAt, extra) {
  const textEl = messageBody(m);
  const node = el("div", { class: "msg", "data-testid": "transcript-message", dataset: { sender, ...extra } });
  if (sender !== "system") {
    node.append(el("div", { class: "msg-meta" },
      el("span", { class: "msg-label", text: LABEL[sender] || "" }),
      sender === "bot" ? null : el("span", { class: "msg-name", text: name }),
      el("span", { class: "msg-time", text: formatTime(createdAt) })));
  }
  node.append(el("div", { class: "msg-bubble" }, textEl));
  return node;
}

/**
 * A message only staff see, never sent to the citizen: a supervisor's 悄悄话 ("whisper") or a note of
 * mine or a colleague's 内部备注 ("note").
 */
function buildStaffOnly(m, kind, label, defaultName) {
  const textEl = el("div", { class: "msg-text" });
  appendLinkified(textEl, m.text ?? "");
  return el("div", {
    class: `msg ${kind}`,
    "data-testid": kind,
    dataset: { sender: kind, id: m.id != null ? String(m.id) : "" },
  },
    el("div", { class: "msg-meta" },
      el("span", { class: "msg-label", text: label }),
      el("span", { class: "msg-name", text: m.sender_name || defaultName }),
      el("span", { class: "msg-time", text: formatTime(m.created_at) }),
      el("span", { class: `${kind}-private`, text: "仅坐席可见" })),
    el("div", { class: "msg-bubble" }, textEl));
}

function buildWhisper(m) {
  return buildStaffOnly(m, "whisper", "悄悄话", "班长");
}

function buildNote(m) {
  return buildStaffOnly(m, "note", "内部备注", "坐席");
}

function renderConversation(forceScroll) {
  const conv = state.convs.get(state.selected);
  if (!conv) {
    ui.convView.classList.add("hidden");
    ui.convEmpty.classList.remove("hidden");
    renderAssist(null);
    renderScreenPop(null);
    return;
  }
  ui.convEmpty.classList.add("hidden");
  ui.convView.classList.remove("hidden");
  ui.convView.dataset.conversationId = conv.id;
  ui.convName.textContent = conv.name;
  ui.convChannel.textContent = channelLabel(conv.channel);
  ui.convState.textContent = conv.ended ? conv.endText : conv.busy ? "处理中…" : "服务中";
  ui.convState.className = conv.ended ? "tag tag-gray" : "tag tag-green";

  const t = ui.transcript;
  const stick = forceScroll || t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  t.textContent = "";
  if (conv.memo) {
    t.append(el("div", { class: "transfer-memo", "data-testid": "transfer-memo" },
      el("div", { class: "tm-head" },
        el("span", { class: "tm-label", text: "转接备注" }),
        conv.memo.from ? el("span", { class: "tm-from", text: `来自 ${conv.memo.from}` }) : null,
        el("span", { class: "tm-private", text: "仅坐席可见" })),
      el("div", { class: "tm-text", text: conv.memo.text })));
  }
  const msgs = [...conv.messages.values()].sort((a, b) => tsOf(a.created_at) - tsOf(b.created_at));
  for (const m of msgs) {
    if (isWhisper(m)) {
      t.append(buildWhisper(m));
      continue;
    }
    if (isNote(m)) {
      t.append(buildNote(m));
      continue;
    }
    const sender = ["bot", "citizen", "agent", "system"].includes(m.sender) ? m.sender : "system";
    const name = sender === "citizen" ? (m.sender_name || conv.name) : sender === "agent" ? (m.sender_name || "坐席") : "";
    t.append(buildMsg(sender, name, m, m.created_at, { id: m.id != null ? String(m.id) : "" }));
  }
  for (const l of conv.local) {
    const node = buildMsg("agent", "我", { text: l.text }, l.created_at, { clientId: l.clientId });
    node.dataset.state = l.state;
    node.append(el("div", { class: "msg-state", text: l.state === "failed" ? (l.reason || "发送失败") : "发送中…" }));
    t.append(node);
  }
  if (conv.ended) {
    t.append(el("div", { class: "msg", dataset: { sender: "system" } },
      el("div", { class: "msg-bubble" }, el("div", { class: "msg-text", text: conv.endText }))));
  }
  if (stick) t.scrollTop = t.scrollHeight;
  updateReplyControls();
  renderTyping();
  renderAssist(conv);
  renderScreenPop(conv);
}

function updateReplyControls() {
  const conv = state.convs.get(state.selected);
  const usable = !!conv && !conv.ended && !conv.busy;
  const len = ui.input.value.length;
  const note = state.mode === "note";
  const max = note ? NOTE_MAX : MAX_LEN;
  ui.counter.textContent = `${len}/${max}`;
  ui.input.disabled = !conv || conv.ended;
  ui.input.placeholder = conv && conv.ended ? "会话已结束，无法回复"
    : note ? "添加内部备注：仅坐席和班长可见，市民看不到（Enter 保存）"
      : "输入回复内容，按 Enter 发送，Shift+Enter 换行；输入 / 搜索快捷回复";
  ui.send.disabled = !usable || !state.online || ui.input.value.trim() === "" || len > max;
  ui.send.textContent = note ? "添加备注" : "发送";
  ui.cannedOpen.disabled = !usable || note;
  ui.closeBtn.disabled = !usable || !state.online;
  ui.returnBtn.disabled = !usable || !state.online;
  ui.transferBtn.disabled = !usable || !state.online;
}

function renderScreenPop(conv) {
  const pop = ui.pop;
  if (conv) {
    // the CRM's panel (hub/static/crm_panel.js): profile form, 合并客户, tickets, history
    window.crmPanel.render(pop, conv);
    return;
  }
  pop.textContent = "";
  pop.append(el("h2", { class: "panel-title" }, "客户信息"),
    el("p", { class: "empty", text: "接入会话后显示客户信息" }));
}

/* ------------------------------------------------------------------ actions */

function select(id) {
  if (state.selected && state.selected !== id) state.drafts.set(state.selected, ui.input.value);
  if (state.selected !== id) { stopTypingSignal(); closeCanned(); }
  const changed = state.selected !== id;
  state.selected = id;
  const conv = state.convs.get(id);
  if (conv) conv.unread = 0;
  if (changed) {
    ui.input.value = state.drafts.get(id) || "";
  }
  renderTabs();
  renderConversation(true);
  if (conv && !conv.ended) ui.input.focus();
}

function dismiss(id) {
  state.convs.delete(id);
  state.drafts.delete(id);
  if (state.selected === id) {
    state.selected = null;
    const next = [...state.convs.keys()][0];
    if (next) { select(next); return; }
    ui.input.value = "";
  }
  renderTabs();
  renderConversation(true);
}

function sendReply() {
  if (state.mode === "note") { sendNote(); return; }
  closeCanned();
  const conv = state.convs.get(state.selected);
  const text = ui.input.value.trim();
  if (!conv || conv.ended || !text || text.length > MAX_LEN) return;
  const clientId = uuid();
  if (!sendFrame({ type: "reply", conversation_id: conv.id, text, client_id: clientId })) return;
  const local = { clientId, text, created_at: new Date().toISOString(), state: "pending", reason: "", timer: null };
  local.timer = setTimeout(() => {
    if (local.state === "pending" && conv.local.includes(local)) {
      local.state = "failed";
      local.reason = "发送超时，未收到服务器确认";
      if (state.selected === conv.id) renderConversation(false);
    }
  }, REPLY_ACK_MS);
  conv.local.push(local);
  ui.input.value = "";
  state.typingConv = null; // the reply itself tells the citizen's page to stop showing "typing"
  state.drafts.delete(conv.id);
  renderConversation(true);
  ui.input.focus();
}

/* ------------------------------------------------------------------ dialogs */

let dialogReturnFocus = null;

function openModal(node, focus) {
  dialogReturnFocus = document.activeElement;
  node.classList.remove("hidden");
  if (focus) focus.focus();
}

function closeModal(node) {
  node.classList.add("hidden");
  if (dialogReturnFocus && typeof dialogReturnFocus.focus === "function" && document.contains(dialogReturnFocus)) {
    dialogReturnFocus.focus();
  }
  dialogReturnFocus = null;
}

function showDialogError(node, text) {
  node.textContent = text;
  node.classList.toggle("hidden", !text);
}

function closeConversation() {
  const conv = state.convs.get(state.selected);
  if (!conv || conv.ended || conv.busy) return;
  state.closing = { convId: conv.id, sent: false };
  ui.closeDisposition.value = "resolved";
  ui.closeSummary.value = "";
  showDialogError(ui.closeError, "");
  ui.closeOk.disabled = false;
  ui.closeOk.textContent = "结束会话";
  ui.closeTitle.textContent = `结束会话：${conv.name}`;
  openModal(ui.closeDialog, ui.closeDisposition);
}

function submitClose(ev) {
  ev.preventDefault();
  const pending = state.closing;
  if (!pending || pending.sent) return;
  const conv = state.convs.get(pending.convId);
  if (!conv || conv.ended) { hideCloseDialog(); return; }
  const summary = ui.closeSummary.value.trim();
  if (summary.length > 1000) { showDialogError(ui.closeError, "服务小结不能超过 1000 字"); return; }
  const frame = { type: "close", conversation_id: conv.id, disposition: ui.closeDisposition.value, summary };
  if (!sendFrame(frame)) { showDialogError(ui.closeError, "与服务器的连接已断开，请稍后再试"); return; }
  pending.sent = true;
  conv.busy = true; // wait for "closed"
  ui.closeOk.disabled = true;
  ui.closeOk.textContent = "正在结束…";
  showDialogError(ui.closeError, "");
  if (state.selected === conv.id) renderConversation(false);
}

function hideCloseDialog() {
  state.closing = null;
  closeModal(ui.closeDialog);
}

function openTransfer() {
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

function updateTransferControls() {
  const sending = !!(state.transfer && state.transfer.sent);
  ui.transferOk.disabled = sending || !ui.transferTarget.value;
  ui.transferOk.textContent = sending ? "正在转接…" : "确认转接";
  ui.transferTarget.disabled = sending;
  ui.transferMemo.disabled = sending;
}

function submitTransfer(ev) {
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

function hideTransferDialog() {
  state.transfer = null;
  closeModal(ui.transferDialog);
}

function handleAgents(frame) {
  state.colleagues = {
    items: Array.isArray(frame.items) ? frame.items : [],
    groups: Array.isArray(frame.groups) ? frame.groups : [],
  };
  if (state.transfer && !state.transfer.sent) renderTransferTargets();
}

/* ----------------------------------------------------------------- presence */

function handlePresence(frame) {
  const status = String(frame.status || "");
  state.presence = status;
  if ([...ui.presence.options].some((o) => o.value === status)) ui.presence.value = status;
  ui.presence.dataset.status = status;
  ui.presence.disabled = !state.online;
}

function changePresence() {
  const status = ui.presence.value;
  if (!sendFrame({ type: "presence", status })) {
    if (state.presence) ui.presence.value = state.presence;
    return;
  }
  ui.presence.dataset.status = status;
  toast(`状态已切换为“${PRESENCE_LABEL[status]}”${status === "away" ? "，系统不会再为您分配新会话" : ""}`);
}

function returnToBot() {
  const conv = state.convs.get(state.selected);
  if (!conv || conv.ended || conv.busy) return;
  if (!sendFrame({ type: "return_to_bot", conversation_id: conv.id })) return;
  // The protocol names no reply for return_to_bot; the conversation is no longer mine.
  conv.ended = true;
  conv.endText = "已转回机器人";
  renderTabs();
  renderConversation(false);
}

/* --------------------------------------------------- console features */
// 内部备注, 快捷回复, 智能推荐, typing both ways, attachments, the title-bar count.

function isNote(msg) {
  return !!(msg && msg.meta && typeof msg.meta === "object" && msg.meta.internal && msg.meta.note);
}

function isInternal(msg) {
  return isWhisper(msg) || isNote(msg);
}

/** New work for the unread badge and the title count: what the citizen, the bot or the system said. */
function countsAsUnread(msg) {
  return !!msg && msg.sender !== "agent" && !isNote(msg);
}

/** "(3) 坐席工作台 - 政务云客服": citizens waiting plus unread messages in my tabs. */
function updateTitle() {
  let n = state.queue.length;
  for (const conv of state.convs.values()) n += conv.unread;
  document.title = n > 0 ? `(${n}) ${BASE_TITLE}` : BASE_TITLE;
}

function sendNote() {
  const conv = state.convs.get(state.selected);
  const text = ui.input.value.trim();
  if (!conv || conv.ended || !text) return;
  if (text.length > NOTE_MAX) { toast(`备注太长了（不超过 ${NOTE_MAX} 字）`); return; }
  const clientId = uuid();
  if (!sendFrame({ type: "note", conversation_id: conv.id, text, client_id: clientId })) return;
  state.pendingNote = { convId: conv.id, text, clientId };
  ui.input.value = "";
  state.drafts.delete(conv.id);
  updateReplyControls();
  ui.input.focus();
}

function handleNoteAck(frame) {
  if (state.pendingNote && state.pendingNote.clientId === frame.client_id) state.pendingNote = null;
  handleMessage(frame.message);
}

/** The hub refused my note: give the text back so nothing typed is lost. */
function restorePendingNote() {
  const pending = state.pendingNote;
  state.pendingNote = null;
  if (pending && state.selected === pending.convId && ui.input.value.trim() === "") {
    ui.input.value = pending.text;
    updateReplyControls();
  }
}

function setMode(mode) {
  state.mode = mode === "note" ? "note" : "reply";
  ui.replyBox.dataset.mode = state.mode;
  ui.modeReply.setAttribute("aria-pressed", String(state.mode === "reply"));
  ui.modeNote.setAttribute("aria-pressed", String(state.mode === "note"));
  if (state.mode === "note") { stopTypingSignal(); closeCanned(); }
  updateReplyControls();
  if (!ui.input.disabled) ui.input.focus();
}

/* typing: mine to the citizen (throttled), the citizen's in my tab */

function quietSend(frame) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  try { ws.send(JSON.stringify(frame)); return true; } catch (_) { return false; }
}

function signalTyping() {
  const conv = state.convs.get(state.selected);
  const text = ui.input.value.trim();
  const composing = !!conv && !conv.ended && state.mode === "reply" && text !== "" && !text.startsWith("/");
  if (!composing) { stopTypingSignal(); return; }
  if (state.typingConv === conv.id && Date.now() - state.typingSentAt < TYPING_SIGNAL_MS) return;
  if (quietSend({ type: "typing", conversation_id: conv.id, active: true })) {
    state.typingConv = conv.id;
    state.typingSentAt = Date.now();
  }
}

function stopTypingSignal() {
  if (state.typingConv) {
    const conv = state.convs.get(state.typingConv);
    if (conv && !conv.ended) quietSend({ type: "typing", conversation_id: conv.id, active: false });
  }
  state.typingConv = null;
  state.typingSentAt = 0;
}

function handleTyping(frame) {
  const conv = state.convs.get(String(frame.conversation_id));
  if (!conv) return;
  clearTimeout(conv.typingTimer);
  conv.citizenTyping = frame.active === false ? 0 : Date.now();
  if (conv.citizenTyping) {
    conv.typingTimer = setTimeout(() => {
      conv.citizenTyping = 0;
      renderTyping();
      renderTabs();
    }, CITIZEN_TYPING_MS);
  }
  renderTyping();
  renderTabs();
}

function renderTyping() {
  const conv = state.convs.get(state.selected);
  ui.citizenTyping.classList.toggle("hidden", !(conv && !conv.ended && conv.citizenTyping));
}

/* 智能推荐: KB answers for the citizen's last message */

function handleAssist(frame) {
  const conv = state.convs.get(String(frame.conversation_id));
  if (!conv) return;
  const current = conv.assist && Number(conv.assist.message_id);
  if (current && Number(frame.message_id) < current) return; // an older message's answers came late
  conv.assist = frame;
  if (state.selected === conv.id) renderAssist(conv);
}

function renderAssist(conv) {
  ui.assistList.textContent = "";
  const a = conv && !conv.ended ? conv.assist : null;
  const items = a && Array.isArray(a.items) ? a.items : [];
  ui.assistFor.classList.toggle("hidden", !a);
  ui.assistFor.textContent = a ? `市民：“${a.text}”` : "";
  ui.assistEmpty.classList.toggle("hidden", items.length > 0);
  ui.assistEmpty.textContent = !conv ? "接入会话后，这里会推荐知识库答案"
    : conv.ended ? "会话已结束"
      : !a ? "市民发来消息后，这里会推荐知识库答案" : "知识库中没有找到相关答案";
  for (const item of items) {
    const answer = String(item.short_answer || item.answer || "");
    ui.assistList.append(el("li", { class: "assist-item", "data-testid": "assist-item", dataset: { entryId: item.entry_id } },
      el("div", { class: "ai-head" },
        el("span", { class: "ai-q", text: item.question || "" }),
        item.branch ? el("span", { class: "tag tag-gray", text: item.branch }) : null),
      el("div", { class: "ai-a", text: answer }),
      el("button", {
        class: "btn btn-sm ai-insert",
        type: "button",
        "data-testid": "assist-insert",
        title: "插入到回复框",
        onclick: () => insertIntoReply(answer, false),
      }, "插入")));
  }
}

/** Put text in the reply box (at the cursor, or instead of a "/…" search) and focus it. */
function insertIntoReply(text, replaceAll) {
  const conv = state.convs.get(state.selected);
  if (!conv || conv.ended || !text) return;
  if (state.mode !== "reply") setMode("reply");
  const input = ui.input;
  if (replaceAll || input.value.trim() === "") {
    input.value = text;
  } else {
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    input.selectionStart = input.selectionEnd = start + text.length;
  }
  state.drafts.set(conv.id, input.value);
  updateReplyControls();
  input.focus();
  signalTyping();
}

/* 快捷回复: "/" in the reply box (or the button) opens a searchable list */

function onSlashInput() {
  if (state.mode !== "reply") return;
  const m = /^\/(\S{0,20})$/.exec(ui.input.value);
  if (m) openCanned(true, m[1]);
  else if (state.canned.open && state.canned.fromSlash) closeCanned();
}

function openCanned(fromSlash, query) {
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

function closeCanned() {
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
function cannedKey(ev) {
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

async function openCannedManager() {
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

function resetCannedForm() {
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

async function saveCanned(ev) {
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

function hideCannedDialog() {
  closeModal(ui.cannedDialog);
}

/* reconnecting: the hub lists the conversations still mine before it resends each one */

function handleSync(frame) {
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

function wireConsoleFeatures() {
  ui.modeReply.addEventListener("click", () => setMode("reply"));
  ui.modeNote.addEventListener("click", () => setMode("note"));
  ui.cannedOpen.addEventListener("click", () => (state.canned.open ? closeCanned() : openCanned(false)));
  ui.cannedSearch.addEventListener("input", () => openCanned(false, ui.cannedSearch.value));
  ui.cannedSearch.addEventListener("keydown", (ev) => { cannedKey(ev); });
  ui.cannedManage.addEventListener("click", openCannedManager);
  $("nav-canned").addEventListener("click", (ev) => { ev.preventDefault(); openCannedManager(); });
  ui.cannedForm.addEventListener("submit", saveCanned);
  ui.cannedNew.addEventListener("click", resetCannedForm);
  ui.cannedClose.addEventListener("click", hideCannedDialog);
  ui.cannedDialog.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); hideCannedDialog(); } });
  ui.cannedDialog.addEventListener("mousedown", (ev) => { if (ev.target === ui.cannedDialog) hideCannedDialog(); });
  ui.input.addEventListener("blur", () => {
    // clicking elsewhere closes a "/" list (a click on an item keeps the focus, see renderCannedList)
    if (state.canned.open && state.canned.fromSlash) setTimeout(() => { if (document.activeElement !== ui.input) closeCanned(); }, 150);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden || !state.selected) return;
    const conv = state.convs.get(state.selected);
    if (conv && conv.unread) { conv.unread = 0; renderTabs(); }
  });
}

/* --------------------------------------------------------------- connection */

function handleFrame(frame) {
  switch (frame.type) {
    case "queue": renderQueue(Array.isArray(frame.items) ? frame.items : []); break;
    case "assigned": handleAssigned(frame); break;
    case "ack": handleAck(frame); break;
    case "message": handleMessage(frame.message); break;
    case "closed": handleClosed(frame); break;
    case "transferred": handleTransferred(frame); break;
    case "presence": handlePresence(frame); break;
    case "agents": handleAgents(frame); break;
    case "error": handleError(frame); break;
    case "note": handleMessage(frame.message); break;
    case "note_ack": handleNoteAck(frame); break;
    case "typing": handleTyping(frame); break;
    case "assist": handleAssist(frame); break;
    case "sync": handleSync(frame); break;
    default: break;
  }
}

const connect = keepStaffSocket(state, {
  path: "/ws/agent",
  page: "/agent",
  dot: ui.dot,
  banner: ui.banner,
  onOpen: () => { state.socketSeq += 1; },
  onFrame: handleFrame,
  onOnlineChange: (online) => {
    ui.presence.disabled = !online || !state.presence;
    updateReplyControls();
  },
});

/* -------------------------------------------------------------------- wire */

ui.input.addEventListener("input", () => {
  if (state.selected) state.drafts.set(state.selected, ui.input.value);
  updateReplyControls();
  onSlashInput();
  signalTyping();
});
ui.input.addEventListener("keydown", (ev) => {
  if (state.canned.open && cannedKey(ev)) return;
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    sendReply();
  }
});
ui.send.addEventListener("click", sendReply);
ui.closeBtn.addEventListener("click", closeConversation);
ui.returnBtn.addEventListener("click", returnToBot);
ui.transferBtn.addEventListener("click", openTransfer);
ui.transferForm.addEventListener("submit", submitTransfer);
ui.transferTarget.addEventListener("change", () => { showDialogError(ui.transferError, ""); updateTransferControls(); });
ui.transferCancel.addEventListener("click", hideTransferDialog);
ui.closeForm.addEventListener("submit", submitClose);
ui.closeCancel.addEventListener("click", hideCloseDialog);
for (const [dialog, hide] of [[ui.transferDialog, hideTransferDialog], [ui.closeDialog, hideCloseDialog]]) {
  dialog.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); hide(); } });
  dialog.addEventListener("mousedown", (ev) => { if (ev.target === dialog) hide(); });
}
ui.presence.addEventListener("change", changePresence);
setInterval(tickWaiting, 1000);

renderTabs();
renderConversation(true);
wireConsoleFeatures();
initStaffHeader("/agent").then((me) => {
  state.me = me;
  if (me && me.role === "supervisor") $("nav-supervisor").classList.remove("hidden");
});
connect();
