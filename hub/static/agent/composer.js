// The reply box: replies and 内部备注, its controls, and typing both ways.
import { rememberMode } from "/static/agent/persist.js";
import { uuid } from "/static/common.js";
import { closeCanned } from "/static/agent/canned.js";
import { handleMessage } from "/static/agent/conversations.js";
import { $, CITIZEN_TYPING_MS, MAX_LEN, NOTE_MAX, REPLY_ACK_MS, TYPING_SIGNAL_MS, quietSend, sendFrame, state, toast, ui } from "/static/agent/state.js";
import { renderConversation, renderTabs } from "/static/agent/transcript.js";

export function updateReplyControls() {
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

export function sendReply() {
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

export function handleNoteAck(frame) {
  if (state.pendingNote && state.pendingNote.clientId === frame.client_id) state.pendingNote = null;
  handleMessage(frame.message);
}

/** The hub refused my note: give the text back so nothing typed is lost. */
export function restorePendingNote() {
  const pending = state.pendingNote;
  state.pendingNote = null;
  if (pending && state.selected === pending.convId && ui.input.value.trim() === "") {
    ui.input.value = pending.text;
    updateReplyControls();
  }
}

export function setMode(mode) {
  state.mode = mode === "note" ? "note" : "reply";
  const conv = state.convs.get(state.selected);
  if (conv) { conv.mode = state.mode; rememberMode(conv.id, state.mode); }
  ui.replyBox.dataset.mode = state.mode;
  ui.modeReply.setAttribute("aria-pressed", String(state.mode === "reply"));
  ui.modeNote.setAttribute("aria-pressed", String(state.mode === "note"));
  if (state.mode === "note") { stopTypingSignal(); closeCanned(); }
  updateReplyControls();
  if (!ui.input.disabled) ui.input.focus();
}

export function signalTyping() {
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

export function stopTypingSignal() {
  if (state.typingConv) {
    const conv = state.convs.get(state.typingConv);
    if (conv && !conv.ended) quietSend({ type: "typing", conversation_id: conv.id, active: false });
  }
  state.typingConv = null;
  state.typingSentAt = 0;
}

export function handleTyping(frame) {
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

export function renderTyping() {
  const conv = state.convs.get(state.selected);
  ui.citizenTyping.classList.toggle("hidden", !(conv && !conv.ended && conv.citizenTyping));
}

/** Put text in the reply box (at the cursor, or instead of a "/…" search) and focus it. */
export function insertIntoReply(text, replaceAll) {
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
