// The console's shared state: limits, the page's elements, what the hub has told us, and the socket send helpers.
import { DraftStore, rememberedSelected } from "/static/agent/persist.js";
import { sendJson, showToast, staffSocketState, toMillis } from "/static/common.js";

export const MAX_LEN = 2000; // the hub's limit for agent replies (handoff.console.MAX_REPLY_CHARS)
export const REPLY_ACK_MS = 15000;
// Error codes the hub sends for a failed accept / for a failed reply.
export const ACCEPT_ERRORS = new Set(["taken", "at_capacity"]);
export const REPLY_ERRORS = new Set(["empty", "too_long", "not_yours", "forbidden_words"]);
export const BASE_TITLE = "坐席工作台 - 政务云客服";
export const NOTE_MAX = 1000; // handoff.notes.MAX_NOTE
export const TYPING_SIGNAL_MS = 2000; // my typing reaches the citizen at most this often
export const CITIZEN_TYPING_MS = 6000; // the citizen's "typing" fades without a fresh signal
export const PRESENCE_LABEL = { online: "在线", busy: "忙碌", away: "离开", offline: "离线" };
// Where a conversation went when the hub says it is no longer mine ("closed" frame's transition).
export const CLOSED_TEXT = {
  close: "会话已结束",
  return_to_bot: "已转回机器人",
  transfer: "会话已转出",
  transfer_to_group: "会话已转出",
  requeue: "会话已回到排队",
};

export const $ = (id) => document.getElementById(id);
export const ui = {
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
  convGroup: $("conv-group"),
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
  closeHint: $("close-hint"),
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
  assistSearch: $("assist-search"),
  assistList: $("assist-list"),
  assistEmpty: $("assist-empty"),
};

export const state = {
  ...staffSocketState(),
  queue: [],
  knownQueueIds: null,     // null until the first queue frame: no beep for what is already waiting
  waitStart: new Map(),    // conversation_id -> local epoch ms the wait started
  queueInfo: new Map(),    // conversation_id -> last queue item (channel, name) for later tabs
  convs: new Map(),        // conversation_id -> Conversation
  orphans: new Map(),      // conversation_id -> [Message] that arrived before "assigned"
  pendingAccepts: new Set(),
  selected: null,
  drafts: new DraftStore(), // conversation_id -> unsent reply text (kept across reloads)
  reopen: rememberedSelected(), // the tab being worked on before a reload, selected again when it comes back
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
  kbSearch: { query: "", items: [], seq: 0, timer: null }, // the 智能推荐 panel's own KB search
  canned: { items: [], index: 0, open: false, fromSlash: false, seq: 0, timer: null, editing: null, deleting: null },
};

/* ------------------------------------------------------------------ helpers */

export function tsOf(value) {
  const t = toMillis(value);
  return Number.isNaN(t) ? Date.now() : t;
}

export function toast(text) {
  showToast(ui.toast, text);
}

export function sendFrame(frame) {
  return sendJson(state.ws, frame, toast);
}

/* typing: mine to the citizen (throttled), the citizen's in my tab */

export function quietSend(frame) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  try { ws.send(JSON.stringify(frame)); return true; } catch (_) { return false; }
}
