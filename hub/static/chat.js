// Citizen web chat: speaks the /ws/chat protocol (docs/design.md, "Web chat WebSocket").
import { scheduleReconnect, wsUrl, uuid, el, formatTime, appendLinkified, toMillis, jsonRequest } from "/static/common.js";
import { markRated, queuedText, ratingRow, unmarkPending } from "/static/chat_extras.js";

const VISITOR_KEY = "zwkf_visitor_id";
const MAX_LEN = 1000;
const ACK_TIMEOUT_MS = 15000;
const WELCOME_TIMEOUT_MS = 10000;
const PING_MS = 25000; // keeps idle sockets alive through proxies; the hub answers "pong"
// Error codes for which sending the same text again cannot succeed.
const NO_RETRY_CODES = new Set(["too_long", "bad_field", "bad_json", "empty", "sensitive"]);

const SENDER_LABEL = { bot: "智能客服", system: "系统消息" };
const TYPING_MS = 20000; // a typing indicator not followed by a message disappears after this
const UPLOAD_MAX_BYTES = 5 * 1024 * 1024;
const UPLOAD_TYPES = { "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp", "application/pdf": "pdf" };
const VOTES_KEY = "zwkf_votes";
// Opened by hub/static/widget.js as an iframe on a bureau's site: /chat?embed=1
const EMBED = /(?:^|[?&])embed=1(?:&|$)/.test(location.search);

const $ = (id) => document.getElementById(id);
const ui = {
  log: $("chat-log"),
  list: $("chat-messages"),
  status: $("chat-status"),
  conn: $("chat-conn"),
  input: $("chat-input"),
  send: $("chat-send"),
  human: $("chat-human"),
  counter: $("chat-counter"),
  typing: $("chat-typing"),
  upload: $("chat-upload"),
  file: $("chat-file"),
  uploadStatus: $("chat-upload-status"),
  close: $("chat-close"),
  lengthNote: $("chat-length-note"),
  leave: $("chat-leave"),
  leaveForm: $("chat-leave-form"),
  leaveText: $("chat-leave-text"),
  leaveSend: $("chat-leave-send"),
  leaveCancel: $("chat-leave-cancel"),
  leaveError: $("chat-leave-error"),
  previous: $("chat-previous"),
};

const state = {
  ws: null,
  ready: false,          // welcome received on the current socket
  visitorId: loadVisitorId(),
  conversationId: null,
  owner: null,
  attempts: 0,
  reconnectTimer: null,
  welcomeTimer: null,
  pingTimer: null,
  humanTimer: null,
  rendered: new Map(),   // message id -> element
  pending: new Map(),    // client_id -> {el, text, timer}
  typingTimer: null,
  uploading: false,
  votes: loadVotes(),    // message id -> "up" | "down"
  panelOpen: !EMBED,     // in the widget: is the panel showing (else count unread for the button)
  unread: 0,
  etaSeconds: null,      // the hub's estimated wait while queued
  offHours: false,       // the hub said nobody is at work now (留言 is offered)
  leaveOffered: false,   // the hub offered 留言 (a long wait)
  leaving: false,        // a 留言 was sent and waits for the hub
  previousShown: false,  // the last, ended conversation is shown above (once per page)
};

/* ------------------------------------------------------------------ storage */

function loadVisitorId() {
  try { return localStorage.getItem(VISITOR_KEY) || null; } catch (_) { return null; }
}

function loadVotes() {
  try { return JSON.parse(localStorage.getItem(VOTES_KEY) || "{}") || {}; } catch (_) { return {}; }
}

function saveVote(id, vote) {
  state.votes[id] = vote;
  try { localStorage.setItem(VOTES_KEY, JSON.stringify(state.votes)); } catch (_) { /* memory only */ }
}

function saveVisitorId(id) {
  if (!id) return;
  state.visitorId = id;
  try { localStorage.setItem(VISITOR_KEY, id); } catch (_) { /* private mode: keep it in memory */ }
}

/* ---------------------------------------------------------------- rendering */

function nearBottom() {
  const { scrollTop, scrollHeight, clientHeight } = ui.log;
  return scrollHeight - scrollTop - clientHeight < 80;
}

function scrollToBottom() {
  ui.log.scrollTop = ui.log.scrollHeight;
}

function tsOf(value) {
  const t = toMillis(value);
  return Number.isNaN(t) ? Date.now() : t;
}

function buildMessage(sender, text, name, createdAt) {
  const textEl = el("div", { class: "msg-text" });
  appendLinkified(textEl, text);
  const node = el("div", {
    class: "msg",
    "data-testid": "chat-message",
    dataset: { sender, ts: String(tsOf(createdAt)) },
  });
  if (sender !== "system") {
    const meta = el("div", { class: "msg-meta" });
    if (sender !== "citizen") meta.append(el("span", { class: "msg-name", text: name }));
    meta.append(el("span", { class: "msg-time", text: formatTime(createdAt || new Date()) }));
    node.append(meta);
  }
  node.append(el("div", { class: "msg-bubble" }, textEl));
  return node;
}

/*
 * A KB answer's rich text (meta.answer_html: links, images, simple formatting). The hub sends it
 * sanitised (kb_sync/sanitize.py); the page checks it again: it is parsed into an inert document
 * (DOMParser never runs scripts or loads anything) and only allowed elements and attributes are
 * copied over with createElement/setAttribute, so nothing else can reach the page.
 */
const RICH_TAGS = {
  A: ["href", "title"], IMG: ["src", "alt", "title", "width", "height"], P: [], BR: [], B: [], STRONG: [],
  I: [], EM: [], U: [], UL: [], OL: [], LI: [], BLOCKQUOTE: [], H3: [], H4: [],
};
const RICH_DROP = new Set(["SCRIPT", "STYLE", "IFRAME", "OBJECT", "EMBED", "NOSCRIPT", "TEMPLATE", "SVG", "MATH",
  "TEXTAREA", "SELECT", "FRAME", "FRAMESET", "APPLET", "HEAD", "TITLE", "FORM", "INPUT", "BUTTON"]);
const SAFE_URL = /^(?:https?:\/\/|mailto:|tel:|\/(?!\/)|#)/i;

function richFragment(html) {
  const doc = new DOMParser().parseFromString(String(html), "text/html");
  const out = document.createDocumentFragment();
  const copy = (from, to) => {
    for (const child of Array.from(from.childNodes)) {
      if (child.nodeType === Node.TEXT_NODE) {
        to.append(document.createTextNode(child.data));
        continue;
      }
      if (child.nodeType !== Node.ELEMENT_NODE || RICH_DROP.has(child.tagName)) continue;
      const allowed = RICH_TAGS[child.tagName];
      if (!allowed) { copy(child, to); continue; } // unknown markup: keep its text only
      const node = document.createElement(child.tagName.toLowerCase());
      for (const name of allowed) {
        let value = child.getAttribute(name);
        if (value === null) continue;
        if (name === "href" || name === "src") {
          value = value.replace(/[\u0000-\u0020\u007f]+/g, "");
          if (!SAFE_URL.test(value)) continue;
        }
        if ((name === "width" || name === "height") && !/^\d{1,4}%?$/.test(value)) continue;
        node.setAttribute(name, value);
      }
      if (child.tagName === "A") {
        node.setAttribute("target", "_blank"); // never navigate the chat (or the bureau's page) away
        node.setAttribute("rel", "noopener noreferrer");
      }
      if (child.tagName === "IMG") {
        if (!node.getAttribute("src")) continue;
        node.setAttribute("loading", "lazy");
        node.setAttribute("referrerpolicy", "no-referrer");
      }
      copy(child, node);
      to.append(node);
    }
  };
  copy(doc.body, out);
  return out;
}

/** Show a bot message's rich answer in place of its plain text, when it has one. */
function renderRich(node, msg, meta) {
  if (msg.sender !== "bot" || typeof meta.answer_html !== "string" || !meta.answer_html) return;
  const textEl = node.querySelector(".msg-text");
  if (!textEl) return;
  textEl.textContent = "";
  textEl.classList.add("msg-rich");
  textEl.append(richFragment(meta.answer_html));
}

/** An uploaded file's URL as this visitor may fetch it (the hub checks the visitor id). */
function attachmentUrl(att) {
  const url = String(att.url || "");
  if (!/^\/api\/web\/uploads\//.test(url)) return null;
  return state.visitorId ? `${url}?visitor_id=${encodeURIComponent(state.visitorId)}` : url;
}

function formatSize(size) {
  const n = Number(size) || 0;
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(n / 1024))} KB`;
}

/** Attachments, quick replies and 👍/👎 under a rendered message, from its meta. */
function decorate(node, msg) {
  const meta = msg && msg.meta && typeof msg.meta === "object" ? msg.meta : {};
  const bubble = node.querySelector(".msg-bubble");
  if (meta.button_title && msg.sender === "citizen") setText(node, String(meta.button_title));
  renderRich(node, msg, meta);
  const att = meta.attachment;
  if (att && typeof att === "object" && bubble && !node.querySelector(".msg-attachment")) {
    const href = attachmentUrl(att);
    if (href) {
      const box = el("div", { class: "msg-attachment", "data-testid": "chat-attachment" });
      if (String(att.type || "").startsWith("image/")) {
        box.append(el("a", { href, target: "_blank", rel: "noopener" },
          el("img", { class: "msg-image", src: href, alt: att.name || "图片", loading: "lazy" })));
      } else {
        box.append(el("a", { class: "msg-file", href, target: "_blank", rel: "noopener" },
          el("span", { class: "msg-file-icon", "aria-hidden": "true", text: "PDF" }),
          el("span", { class: "msg-file-name", text: att.name || "文件" }),
          el("span", { class: "msg-file-size", text: formatSize(att.size) })));
      }
      bubble.textContent = "";
      bubble.append(box);
    }
  }
  const buttons = Array.isArray(meta.buttons) ? meta.buttons : [];
  if (buttons.length && msg.sender !== "citizen" && !node.querySelector(".msg-buttons")) {
    const row = el("div", { class: "msg-buttons", "data-testid": "chat-quick-replies" });
    for (const b of buttons) {
      if (!b || typeof b !== "object") continue;
      const title = String(b.title || b.payload || "").trim();
      const payload = String(b.payload || b.title || "").trim();
      if (!title || !payload) continue;
      row.append(el("button", {
        class: "quick-reply",
        type: "button",
        "data-testid": "chat-quick-reply",
        dataset: { payload },
        text: title,
        onclick: (ev) => {
          if (!state.ready) return;
          if (sendText(payload, title)) {
            for (const other of row.querySelectorAll("button")) other.disabled = true;
            ev.currentTarget.classList.add("chosen");
          }
        },
      }));
    }
    if (row.children.length) node.append(row);
  }
  if (meta.csat && msg.sender === "system" && meta.conversation_id && !node.querySelector(".csat-row")) {
    node.append(ratingRow(meta, (score) => sendFrame({ type: "csat", conversation_id: meta.conversation_id, score })));
  }
  if (meta.csat_done) {
    markRated(document, Number(meta.score) || 0);
    if (!state.renderingPrevious && meta.score) state.ratedScore = Number(meta.score); // the newest rating
  }
  if (msg.sender === "system" && (meta.off_hours || meta.offer_leave_message)) {
    state.offHours = state.offHours || !!meta.off_hours;
    if (meta.offer_leave_message) state.leaveOffered = true;
    updateControls();
  }
  const id = msg.id != null ? String(msg.id) : null;
  if (msg.sender === "bot" && id && meta.kb_entry_id && !meta.declined && !node.querySelector(".msg-feedback")) {
    node.append(feedbackRow(id));
  }
}

// A thumb drawn inline: emoji fonts are missing on some desktops (👍 would show as a box).
const THUMB_SVG = '<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false">'
  + '<path fill="currentColor" d="M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 '
  + '6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z"/></svg>';

function voteButton(vote, label) {
  const button = el("button", {
    class: `vote vote-${vote}`, type: "button", "data-testid": `chat-vote-${vote}`, "aria-label": label, title: label,
  });
  const icon = el("span", { class: "vote-icon" });
  icon.innerHTML = THUMB_SVG;
  button.append(icon, el("span", { class: "vote-label", text: label }));
  return button;
}

function feedbackRow(id) {
  const row = el("div", { class: "msg-feedback", "data-testid": "chat-feedback", dataset: { messageId: id } });
  const voted = state.votes[id];
  if (voted) {
    row.append(el("span", { class: "feedback-thanks", "data-testid": "chat-feedback-thanks", text: "感谢您的评价！" }));
    row.dataset.vote = voted;
    return row;
  }
  const label = el("span", { class: "feedback-label", text: "这个回答有帮助吗？" });
  const up = voteButton("up", "有帮助");
  const down = voteButton("down", "没帮助");
  const note = el("span", { class: "feedback-note" });
  const vote = async (value) => {
    up.disabled = true;
    down.disabled = true;
    note.textContent = "";
    try {
      const resp = await jsonRequest("POST", "/api/feedback", {
        message_id: Number(id), visitor_id: state.visitorId, vote: value,
      });
      if (!resp.ok) {
        let reason = "评价未提交成功，请稍后重试";
        try { reason = (await resp.json()).reason || reason; } catch (_) { /* keep the default */ }
        throw new Error(reason);
      }
      saveVote(id, value);
      row.dataset.vote = value;
      row.textContent = "";
      row.append(el("span", { class: "feedback-thanks", "data-testid": "chat-feedback-thanks", text: "感谢您的评价！" }));
      if (value === "down") row.append(afterThumbsDown(await resp.json().catch(() => ({}))));
    } catch (err) {
      note.textContent = err && err.message ? err.message : "评价未提交成功，请稍后重试";
      up.disabled = false;
      down.disabled = false;
    }
  };
  up.addEventListener("click", () => vote("up"));
  down.addEventListener("click", () => vote("down"));
  row.append(label, up, down, note);
  return row;
}

/** After 👎: the questions near the one that did not help, and 转人工 (#13.4). */
function afterThumbsDown(body) {
  const row = el("div", { class: "msg-buttons", "data-testid": "chat-after-down" });
  row.append(el("span", { class: "feedback-label", text: "您可以换个问题，或转人工：" }));
  for (const b of Array.isArray(body.related) ? body.related : []) {
    const title = String((b && b.title) || "").trim();
    if (!title) continue;
    row.append(el("button", {
      class: "quick-reply", type: "button", "data-testid": "chat-related", text: title,
      onclick: () => { if (state.ready) sendText(String(b.payload || title), title); },
    }));
  }
  if (body.offer_human) {
    row.append(el("button", {
      class: "quick-reply", type: "button", "data-testid": "chat-after-down-human", text: "转人工",
      onclick: () => { const human = document.getElementById("chat-human"); if (human) human.click(); },
    }));
  }
  return row;
}

function senderName(msg) {
  if (msg.sender === "agent") return msg.sender_name || "人工客服";
  if (msg.sender === "citizen") return "我";
  return SENDER_LABEL[msg.sender] || msg.sender_name || "";
}

function normaliseSender(sender) {
  return ["bot", "citizen", "agent", "system"].includes(sender) ? sender : "system";
}

/** Insert a node keeping the list ordered by data-ts (stable for equal times). */
function insertOrdered(node) {
  const ts = Number(node.dataset.ts);
  const children = ui.list.children;
  for (let i = children.length - 1; i >= 0; i--) {
    const child = children[i];
    const cts = Number(child.dataset.ts);
    if (Number.isNaN(cts) || cts <= ts) {
      child.after(node);
      return;
    }
  }
  ui.list.prepend(node);
}

function setText(node, text) {
  const textEl = node.querySelector(".msg-text");
  if (!textEl) return;
  textEl.textContent = "";
  appendLinkified(textEl, text);
}

/** Render or update one server Message, keyed by its id. */
function upsertMessage(msg, { append = false } = {}) {
  if (!msg || typeof msg !== "object") return null;
  const sender = normaliseSender(msg.sender);
  const id = msg.id != null ? String(msg.id) : null;
  if (id && state.rendered.has(id)) {
    const existing = state.rendered.get(id);
    if (!existing.querySelector(".msg-attachment")) setText(existing, msg.text ?? "");
    decorate(existing, msg);
    return existing;
  }
  const stick = nearBottom();
  const node = buildMessage(sender, msg.text ?? "", senderName(msg), msg.created_at);
  node.dataset.state = "sent";
  if (id) {
    node.dataset.id = id;
    state.rendered.set(id, node);
  }
  if (msg.conversation_id) node.dataset.conversationId = String(msg.conversation_id);
  decorate(node, msg);
  if (append) ui.list.append(node); else insertOrdered(node);
  if (stick) scrollToBottom();
  return node;
}

function setBubbleState(node, st, info = {}) {
  node.dataset.state = st;
  let stateEl = node.querySelector(".msg-state");
  if (st === "sent") {
    if (stateEl) stateEl.remove();
    return;
  }
  if (!stateEl) {
    stateEl = el("div", { class: "msg-state" });
    node.append(stateEl);
  }
  stateEl.textContent = "";
  if (st === "pending") {
    stateEl.append(el("span", { class: "msg-pending", text: "发送中…" }));
  } else if (st === "failed") {
    stateEl.append(el("span", { class: "msg-error", "data-testid": "chat-error", text: info.reason || "发送失败" }));
    if (info.retry) {
      stateEl.append(el("button", {
        class: "msg-retry",
        type: "button",
        text: "重新发送",
        onclick: () => retry(info.clientId),
      }));
    }
  }
}

function showNotice(text) {
  const stick = nearBottom();
  const node = el("div", { class: "chat-notice", role: "alert", "data-testid": "chat-notice", text });
  node.dataset.ts = String(Date.now());
  ui.list.append(node);
  if (stick) scrollToBottom();
}

/* -------------------------------------------------------------- status line */

function renderStatus(owner, queuePosition, agentName) {
  state.owner = owner;
  let text;
  if (owner === "queued") {
    // queue_position is 1-based (the hub's ZRANK + 1): the people ahead are one fewer.
    text = queuedText(queuePosition, state.etaSeconds);
  } else if (owner === "agent") {
    text = agentName ? `人工客服 ${agentName} 为您服务` : "人工客服为您服务";
  } else {
    text = "智能客服";
    owner = "bot";
  }
  ui.status.textContent = text;
  ui.status.dataset.owner = owner;
  ui.status.dataset.queuePosition = owner === "queued" && Number.isInteger(queuePosition) ? String(queuePosition) : "";
  updateControls();
}

function renderOffline(text) {
  ui.conn.textContent = text;
  ui.conn.classList.remove("hidden");
  if (!state.owner) {
    ui.status.textContent = "正在连接…";
    ui.status.dataset.owner = "offline";
  }
}

function updateControls() {
  const len = ui.input.value.length;
  ui.counter.textContent = `${len}/${MAX_LEN}`;
  ui.counter.classList.toggle("over", len > MAX_LEN);
  // a long paste is kept whole: say it is too long before anything is sent (the hub takes 1,000)
  ui.lengthNote.textContent = len > MAX_LEN ? `内容超过 ${MAX_LEN} 字（当前 ${len} 字），请删减或分几次发送` : "";
  ui.lengthNote.classList.toggle("hidden", len <= MAX_LEN);
  ui.leave.classList.toggle("hidden", !(state.owner === "queued" || state.offHours || state.leaveOffered));
  ui.leave.disabled = !state.ready;
  ui.send.disabled = !state.ready || ui.input.value.trim() === "" || len > MAX_LEN;
  const humanBusy = state.humanTimer !== null;
  ui.human.disabled = !state.ready || state.owner !== "bot" || humanBusy;
  if (ui.upload) ui.upload.disabled = !state.ready || state.uploading;
  ui.human.textContent = state.owner === "queued" ? "排队中" : state.owner === "agent" ? "人工服务中" : "转人工";
}

/* ---------------------------------------------------------------- sending */

function sendFrame(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  try {
    state.ws.send(JSON.stringify(frame));
    return true;
  } catch (_) {
    return false;
  }
}

function armAckTimer(clientId) {
  const entry = state.pending.get(clientId);
  if (!entry) return;
  clearTimeout(entry.timer);
  entry.timer = setTimeout(() => {
    if (state.pending.has(clientId) && entry.el.dataset.state === "pending") {
      setBubbleState(entry.el, "failed", { reason: "发送超时，请检查网络", retry: true, clientId });
    }
  }, ACK_TIMEOUT_MS);
}

function sendMessage() {
  const text = ui.input.value.trim();
  if (!text || text.length > MAX_LEN || !state.ready) return;
  sendText(text);
  ui.input.value = "";
  updateControls();
  ui.input.focus();
}

/** Send a text (a quick reply sends its payload and shows its title). */
function sendText(text, title) {
  if (!text || text.length > MAX_LEN || !state.ready) return false;
  const clientId = uuid();
  const node = buildMessage("citizen", title || text, "我", new Date());
  node.dataset.clientId = clientId;
  ui.list.append(node);
  setBubbleState(node, "pending");
  state.pending.set(clientId, { el: node, text, title: title || null, timer: null });
  scrollToBottom();
  if (sendFrame(messageFrame(text, clientId, title))) {
    armAckTimer(clientId);
  } else {
    setBubbleState(node, "failed", { reason: "网络连接中断，消息未发送", retry: true, clientId });
  }
  return true;
}

function messageFrame(text, clientId, title) {
  const frame = { type: "message", text, client_id: clientId };
  if (title && title !== text) frame.title = title;
  return frame;
}

function retry(clientId) {
  const entry = state.pending.get(clientId);
  if (!entry) return;
  if (!state.ready) {
    setBubbleState(entry.el, "failed", { reason: "网络连接中断，请稍后重试", retry: true, clientId });
    return;
  }
  // Same client_id: lets a server that deduplicates on it drop a copy it already stored.
  setBubbleState(entry.el, "pending");
  ui.list.append(entry.el);
  entry.el.dataset.ts = String(Date.now());
  scrollToBottom();
  if (sendFrame(messageFrame(entry.text, clientId, entry.title))) armAckTimer(clientId);
  else setBubbleState(entry.el, "failed", { reason: "网络连接中断，消息未发送", retry: true, clientId });
}

/** A server Message confirms a pending bubble. */
function confirmPending(clientId, msg) {
  const entry = state.pending.get(clientId);
  if (!entry) return false;
  clearTimeout(entry.timer);
  state.pending.delete(clientId);
  const id = msg && msg.id != null ? String(msg.id) : null;
  if (id && state.rendered.has(id) && state.rendered.get(id) !== entry.el) {
    entry.el.remove(); // already shown (echo arrived first)
    return true;
  }
  setBubbleState(entry.el, "sent");
  if (msg) {
    if (msg.text != null && !entry.title) setText(entry.el, msg.text); // server may mask personal data
    if (msg.created_at) {
      entry.el.dataset.ts = String(tsOf(msg.created_at));
      const t = entry.el.querySelector(".msg-time");
      if (t) t.textContent = formatTime(msg.created_at);
    }
    if (msg.conversation_id) entry.el.dataset.conversationId = String(msg.conversation_id);
  }
  if (id) {
    entry.el.dataset.id = id;
    state.rendered.set(id, entry.el);
  }
  return true;
}

function requestHuman() {
  if (!state.ready || state.owner !== "bot") return;
  if (!sendFrame({ type: "human" })) return;
  // Stay disabled until a state frame arrives (or give the button back after a while).
  state.humanTimer = setTimeout(() => { state.humanTimer = null; updateControls(); }, 8000);
  updateControls();
}

/* ---------------------------------------------------------------- receiving */

function handleWelcome(frame) {
  clearTimeout(state.welcomeTimer);
  hideTyping();
  state.ready = true;
  state.attempts = 0;
  saveVisitorId(frame.visitor_id);
  state.conversationId = frame.conversation_id ?? null;
  ui.conn.classList.add("hidden");
  const history = Array.isArray(frame.history) ? frame.history : [];
  history.sort((a, b) => tsOf(a.created_at) - tsOf(b.created_at));
  for (const msg of history) {
    if (!msg || (msg.id != null && state.rendered.has(String(msg.id)))) {
      if (msg) upsertMessage(msg);
      continue;
    }
    // A message sent before the drop whose ack was lost: the history now carries it.
    if (msg.sender === "citizen" && matchPendingFromHistory(msg)) continue;
    upsertMessage(msg);
  }
  // Anything still pending from the old socket never reached the database.
  for (const [clientId, entry] of state.pending) {
    if (entry.el.dataset.state === "pending") {
      clearTimeout(entry.timer);
      setBubbleState(entry.el, "failed", { reason: "网络连接中断，消息可能未发送", retry: true, clientId });
    }
  }
  renderStatus(frame.owner, frame.queue_position ?? null, frame.agent_name ?? null);
  scrollToBottom();
  if (!state.previousShown) showPrevious(frame.conversation_id);
}

/* ------------------------------------------------- the previous conversation */

/** After 结束会话 a reload opens a new conversation: the ended one stays visible above it, read-only. */
async function showPrevious(currentId) {
  state.previousShown = true;
  if (!state.visitorId) return;
  let data = null;
  try {
    const params = new URLSearchParams({ visitor_id: state.visitorId, exclude: currentId || "" });
    const resp = await fetch(`/api/web/previous?${params}`, { credentials: "same-origin" });
    if (resp.ok) data = await resp.json();
  } catch (_) { return; }
  const messages = data && Array.isArray(data.messages) ? data.messages : [];
  if (!messages.length) return;
  const stick = nearBottom();
  const box = ui.previous;
  box.textContent = "";
  box.append(el("div", { class: "previous-head", text: "上次会话（已结束）" }));
  messages.sort((a, b) => tsOf(a.created_at) - tsOf(b.created_at));
  state.renderingPrevious = true;
  for (const msg of messages) {
    const node = buildMessage(normaliseSender(msg.sender), msg.text ?? "", senderName(msg), msg.created_at);
    node.dataset.state = "sent";
    decorate(node, msg);
    for (const live of node.querySelectorAll(".msg-feedback, .msg-buttons")) live.remove(); // read-only
    box.append(node);
  }
  state.renderingPrevious = false;
  if (state.ratedScore) markRated(box, state.ratedScore); // rated again since (a typed rating lands in the new conversation)
  box.append(el("div", { class: "previous-foot", text: "以上为上次会话记录" }));
  box.classList.remove("hidden");
  if (stick) scrollToBottom();
}

/* -------------------------------------------------------------- 留言 */

function openLeaveForm() {
  ui.leaveForm.classList.remove("hidden");
  ui.leaveError.classList.add("hidden");
  ui.leaveText.value = ui.leaveText.value || ui.input.value.trim();
  ui.leaveText.focus();
}

function closeLeaveForm(sent) {
  state.leaving = false;
  ui.leaveSend.disabled = false;
  ui.leaveForm.classList.add("hidden");
  if (sent) {
    ui.leaveText.value = "";
    state.leaveOffered = false;
    state.offHours = false;
    updateControls();
  }
}

function submitLeave(ev) {
  ev.preventDefault();
  const text = ui.leaveText.value.trim();
  if (!text) { ui.leaveError.textContent = "请填写留言内容"; ui.leaveError.classList.remove("hidden"); return; }
  if (text.length > MAX_LEN) {
    ui.leaveError.textContent = `留言不能超过 ${MAX_LEN} 字`;
    ui.leaveError.classList.remove("hidden");
    return;
  }
  if (!sendFrame({ type: "leave_message", text })) {
    ui.leaveError.textContent = "网络连接中断，请稍后再试";
    ui.leaveError.classList.remove("hidden");
    return;
  }
  state.leaving = true;
  ui.leaveSend.disabled = true;
  ui.leaveError.classList.add("hidden");
}

/** Match a server copy of a citizen message to a pending bubble: by meta.client_id, else by text. */
function matchPendingFromHistory(msg) {
  const cid = msg.meta && msg.meta.client_id;
  if (cid && state.pending.has(cid)) return confirmPending(cid, msg);
  for (const [clientId, entry] of state.pending) {
    if (entry.text === msg.text) return confirmPending(clientId, msg);
  }
  return false;
}

function handleError(frame) {
  const reason = frame.reason || "发送失败，请稍后重试";
  const code = frame.code || "";
  let clientId = frame.client_id || null;
  if (!clientId) {
    // The protocol's error frame carries no client_id: frames are answered in order,
    // so it belongs to the oldest message still waiting for its ack.
    for (const [cid, entry] of state.pending) {
      if (entry.el.dataset.state === "pending") { clientId = cid; break; }
    }
  }
  if (!frame.client_id && state.leaving) {
    state.leaving = false;
    ui.leaveSend.disabled = false;
    ui.leaveError.textContent = reason;
    ui.leaveError.classList.remove("hidden");
    return;
  }
  if (!frame.client_id && document.querySelector(".csat-row[data-pending]")) {
    unmarkPending(document);
    showNotice(reason);
    return;
  }
  const entry = clientId ? state.pending.get(clientId) : null;
  if (entry) {
    clearTimeout(entry.timer);
    setBubbleState(entry.el, "failed", { reason, retry: !NO_RETRY_CODES.has(code), clientId });
  } else {
    showNotice(reason);
    if (state.humanTimer) { clearTimeout(state.humanTimer); state.humanTimer = null; updateControls(); }
  }
}

function handleFrame(frame) {
  switch (frame.type) {
    case "welcome":
      handleWelcome(frame);
      break;
    case "history": // tolerated: a separate history frame
      for (const msg of frame.history || frame.messages || []) upsertMessage(msg);
      break;
    case "ack":
      if (!confirmPending(frame.client_id, frame.message) && frame.message) upsertMessage(frame.message);
      break;
    case "typing":
      if (frame.active === false) hideTyping();
      else showTyping(frame.sender === "agent" ? "agent" : "bot");
      break;
    case "message": {
      const msg = frame.message;
      if (!msg) break;
      if (msg.sender !== "citizen") {
        hideTyping();
        noteUnread();
      }
      const known = msg.id != null && state.rendered.has(String(msg.id));
      if (msg.sender === "citizen" && !known && matchPendingFromHistory(msg)) {
        // an echo of my own message (possibly ahead of its ack) confirmed the pending bubble
      } else {
        upsertMessage(msg, { append: true });
      }
      if (msg.conversation_id) state.conversationId = msg.conversation_id;
      break;
    }
    case "state":
      if (state.humanTimer) { clearTimeout(state.humanTimer); state.humanTimer = null; }
      state.etaSeconds = frame.eta_seconds ?? null;
      if (frame.owner === "agent") { state.offHours = false; state.leaveOffered = false; }
      renderStatus(frame.owner, frame.queue_position ?? null, frame.agent_name ?? null);
      break;
    case "error":
      handleError(frame);
      break;
    case "done": // the hub stored a rating or a 留言
      if (frame.request === "csat") markRated(document, Number(frame.score) || 0);
      if (frame.request === "leave_message") closeLeaveForm(true);
      break;
    default:
      break; // "pong" and unknown frame types are ignored
  }
}

/* --------------------------------------------------------------- connection */

function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  if (state.ws && (state.ws.readyState === WebSocket.OPEN || state.ws.readyState === WebSocket.CONNECTING)) return;
  let ws;
  try {
    ws = new WebSocket(wsUrl("/ws/chat"));
  } catch (_) {
    reconnectLater();
    return;
  }
  state.ws = ws;
  ws.addEventListener("open", () => {
    if (state.ws !== ws) return;
    ws.send(JSON.stringify({ type: "hello", visitor_id: state.visitorId || null }));
    state.welcomeTimer = setTimeout(() => { if (!state.ready) ws.close(); }, WELCOME_TIMEOUT_MS);
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => { if (state.ready) sendFrame({ type: "ping" }); }, PING_MS);
  });
  ws.addEventListener("message", (ev) => {
    if (state.ws !== ws) return;
    let frame;
    try { frame = JSON.parse(ev.data); } catch (_) { return; }
    if (frame && typeof frame === "object") handleFrame(frame);
  });
  ws.addEventListener("close", () => {
    if (state.ws !== ws) return;
    clearTimeout(state.welcomeTimer);
    clearInterval(state.pingTimer);
    state.ws = null;
    state.ready = false;
    updateControls();
    reconnectLater();
  });
  // "error" is always followed by "close"; nothing to do here.
}

function reconnectLater() {
  scheduleReconnect(state, connect, renderOffline, "连接已断开");
}

function reconnectNow() {
  if (state.ws) return;
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  connect();
}

/* ------------------------------------------------------------ typing, unread */

function showTyping(sender) {
  if (!ui.typing) return;
  const stick = nearBottom();
  ui.typing.dataset.sender = sender;
  ui.typing.classList.remove("hidden");
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, TYPING_MS);
  if (stick) scrollToBottom();
}

function hideTyping() {
  clearTimeout(state.typingTimer);
  state.typingTimer = null;
  if (ui.typing) ui.typing.classList.add("hidden");
}

/** Let the serving agent see that I am writing (at most every TYPING_SIGNAL_MS; "stopped" when cleared). */
const TYPING_SIGNAL_MS = 2000;
let typingSentAt = 0;
function signalTyping() {
  if (state.owner !== "agent" || !state.ready) return;
  const empty = ui.input.value.trim() === "";
  if (empty) {
    if (typingSentAt) sendFrame({ type: "typing", active: false });
    typingSentAt = 0;
  } else if (Date.now() - typingSentAt >= TYPING_SIGNAL_MS) {
    if (sendFrame({ type: "typing" })) typingSentAt = Date.now();
  }
}

/** Tell the page that embeds us (widget.js) how many replies arrived while the panel was closed. */
function noteUnread() {
  if (!EMBED || state.panelOpen) return;
  state.unread += 1;
  postToParent({ type: "unread", count: state.unread });
}

function postToParent(data) {
  if (!EMBED || window.parent === window) return;
  try { window.parent.postMessage(Object.assign({ source: "zwkf-chat" }, data), "*"); } catch (_) { /* ignore */ }
}

/* ------------------------------------------------------------------ uploads */

function setUploadStatus(text, isError) {
  if (!ui.uploadStatus) return;
  ui.uploadStatus.textContent = text || "";
  ui.uploadStatus.classList.toggle("hidden", !text);
  ui.uploadStatus.classList.toggle("error", Boolean(isError));
}

async function uploadFile(file) {
  if (!file || state.uploading) return;
  if (!state.ready || !state.visitorId) {
    setUploadStatus("连接尚未就绪，请稍后再试", true);
    return;
  }
  if (file.type && !UPLOAD_TYPES[file.type]) {
    setUploadStatus("只支持上传 JPG、PNG、GIF、WEBP 图片或 PDF 文件。", true);
    return;
  }
  if (file.size > UPLOAD_MAX_BYTES) {
    setUploadStatus("文件太大了，单个文件不能超过 5 MB。", true);
    return;
  }
  state.uploading = true;
  updateControls();
  setUploadStatus(`正在上传 ${file.name}…`);
  const form = new FormData();
  form.append("visitor_id", state.visitorId);
  form.append("file", file, file.name);
  try {
    const resp = await fetch("/api/web/upload", { method: "POST", body: form, credentials: "same-origin" });
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    if (!resp.ok) throw new Error((body && body.reason) || "上传失败，请稍后重试");
    setUploadStatus("");
    if (body && body.message) {
      upsertMessage(body.message, { append: true });
      scrollToBottom();
    }
  } catch (err) {
    setUploadStatus(err && err.message ? err.message : "上传失败，请稍后重试", true);
  } finally {
    state.uploading = false;
    updateControls();
  }
}

/* -------------------------------------------------------------------- wire */

if (EMBED) {
  document.body.classList.add("embed");
  if (ui.close) {
    ui.close.classList.remove("hidden");
    ui.close.addEventListener("click", () => postToParent({ type: "close" }));
  }
  window.addEventListener("message", (ev) => {
    // Only the embedding page talks to us, and only to say whether the panel shows.
    if (ev.source !== window.parent || !ev.data || ev.data.source !== "zwkf-widget") return;
    if (ev.data.type === "open") {
      state.panelOpen = true;
      state.unread = 0;
      postToParent({ type: "unread", count: 0 });
      setTimeout(() => { scrollToBottom(); if (!ui.send.disabled || ui.input.value === "") ui.input.focus(); }, 50);
    } else if (ev.data.type === "close") {
      state.panelOpen = false;
    }
  });
  postToParent({ type: "ready" });
}
if (ui.upload && ui.file) {
  ui.upload.addEventListener("click", () => { if (!ui.upload.disabled) ui.file.click(); });
  ui.file.addEventListener("change", () => {
    const file = ui.file.files && ui.file.files[0];
    ui.file.value = "";
    if (file) uploadFile(file);
  });
}

ui.input.addEventListener("input", () => { updateControls(); signalTyping(); });
ui.input.addEventListener("keydown", (ev) => {
  // Enter sends; Shift+Enter is a newline; never send while an IME is composing (pinyin).
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
    ev.preventDefault();
    sendMessage();
  }
});
ui.send.addEventListener("click", sendMessage);
ui.leave.addEventListener("click", openLeaveForm);
ui.leaveCancel.addEventListener("click", () => closeLeaveForm(false));
ui.leaveForm.addEventListener("submit", submitLeave);
ui.human.addEventListener("click", requestHuman);
window.addEventListener("online", reconnectNow);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") reconnectNow();
});

updateControls();
connect();
