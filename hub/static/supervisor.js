// 班长看板: queues, waiting conversations and agents live from the hub's `board` frames over /ws/agent
// (docs/design.md, "Agent console WebSocket"); per conversation 监听 (watch), 悄悄话 (whisper) and
// 接管 (take over, a waiting or a served one). Take-over is deliberate: the hub does not hold it back
// by the supervisor's own capacity; the page shows their load and says so before and after.
// What is watched lives in the hub (Redis): a reconnect to any worker resumes it.
import { keepStaffSocket, staffSocketState, showToast, sendJson, el, formatTime, initStaffHeader, toMillis, channelLabel, uuid } from "/static/common.js";
import { messageBody } from "/static/attachments.js";
import { startToday } from "/static/board_today.js";

const REFRESH_MS = 5000;        // the hub pushes the board on every change; waits still grow between changes
const PRESENCE = { online: ["在线", "tag-green"], busy: ["忙碌", "tag-orange"], away: ["离开", "tag-gray"], offline: ["离线", "tag-gray"] };
const LABEL = { bot: "机器人", citizen: "市民", agent: "坐席", system: "系统" };

const $ = (id) => document.getElementById(id);
const ui = {
  queues: $("board-queues").tBodies[0],
  waiting: $("board-waiting").tBodies[0],
  myLoad: $("my-load"),
  agents: $("board-agents").tBodies[0],
  updated: $("board-updated"),
  watchPanel: $("watch-panel"),
  watchTitle: $("watch-title"),
  watchEmpty: $("watch-empty"),
  watchTranscript: $("watch-transcript"),
  unwatch: $("unwatch"),
  whisperForm: $("whisper-form"),
  whisperInput: $("whisper-input"),
  whisperSend: $("whisper-send"),
  replyForm: $("sv-reply-form"),
  replyInput: $("sv-reply-input"),
  replySend: $("sv-reply-send"),
  banner: $("conn-banner"),
  takeoverBanner: $("takeover-banner"),
  dot: $("conn-dot"),
  toast: $("toast"),
};

const state = {
  ...staffSocketState(),
  refreshTimer: null,
  board: null,
  watching: null,          // {id, name, messages: Map, memo, ended, agent}
  mine: new Set(),         // conversations I took over (served on 坐席工作台)
};

/* ------------------------------------------------------------------ helpers */

function toast(text) {
  showToast(ui.toast, text);
}

function sendFrame(frame) {
  return sendJson(state.ws, frame, toast);
}

/** Seconds → "45秒", "3分05秒", "1小时02分"; null → "—". */
function duration(value) {
  if (value === null || value === undefined || value === "") return "—";
  let s = Math.max(0, Math.round(Number(value)));
  if (!Number.isFinite(s)) return "—";
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (h > 0) return `${h}小时${pad(m)}分`;
  if (m > 0) return `${m}分${pad(s)}秒`;
  return `${s}秒`;
}

function shortId(id) {
  return String(id).replace(/-/g, "").slice(0, 8);
}

function tsOf(value) {
  const t = toMillis(value);
  return Number.isNaN(t) ? Date.now() : t;
}

/* -------------------------------------------------------------------- board */

function renderBoard(frame) {
  state.board = frame;
  state.details = frame.details && typeof frame.details === "object" ? frame.details : {};
  renderQueues(Array.isArray(frame.queues) ? frame.queues : []);
  setWaitingNow(Array.isArray(frame.waiting) ? frame.waiting.length : 0);
  renderAgents(Array.isArray(frame.agents) ? frame.agents : []);
  renderWaiting(Array.isArray(frame.waiting) ? frame.waiting : []);
  renderMyLoad();
  const at = frame.at ? new Date(tsOf(frame.at)) : new Date();
  ui.updated.textContent = `更新于 ${String(at.getHours()).padStart(2, "0")}:${String(at.getMinutes()).padStart(2, "0")}:${String(at.getSeconds()).padStart(2, "0")}`;
  checkWatchedStillServed();
}

function renderQueues(queues) {
  const body = ui.queues;
  body.textContent = "";
  if (!queues.length) {
    body.append(el("tr", { class: "empty-row" }, el("td", { colspan: "5", class: "muted", text: "没有技能组" })));
    return;
  }
  for (const q of queues) {
    const waiting = Number(q.waiting) || 0;
    body.append(el("tr", { class: "queue-row", "data-testid": "queue-row", dataset: { group: q.group, waiting: String(waiting) } },
      el("td", { class: "q-group", text: `${q.group}` }),
      el("td", { class: `num q-waiting${waiting > 0 ? " is-waiting" : ""}`, text: String(waiting) }),
      el("td", { class: "num q-longest", text: waiting > 0 ? duration(q.longest_wait_seconds) : "—" }),
      el("td", { class: "num q-avg-wait", text: duration(q.avg_wait_seconds) }),
      el("td", { class: "num q-avg-handle", text: duration(q.avg_handle_seconds) })));
  }
}

const LONG_WAIT_S = 60;
const REPLY_MAX = 2000; // the hub's limit for a reply (handoff.console.MAX_REPLY_CHARS)

function renderWaiting(items) {
  const body = ui.waiting;
  const rows = new Map();
  for (const tr of body.querySelectorAll("tr.w-row")) rows.set(tr.dataset.conversationId, tr);
  for (const tr of body.querySelectorAll("tr.empty-row")) tr.remove();
  items.forEach((w, index) => {
    const cid = String(w.conversation_id);
    let tr = rows.get(cid);
    rows.delete(cid);
    if (!tr) tr = buildWaitingRow(cid);
    tr.dataset.group = w.group || "";
    fillWho(tr.querySelector(".who"), cid);
    tr.querySelector(".w-group").textContent = w.group || "";
    const wait = tr.querySelector(".w-wait");
    wait.textContent = duration(w.waiting_seconds);
    wait.classList.toggle("is-long", Number(w.waiting_seconds) >= LONG_WAIT_S);
    const on = !!state.watching && state.watching.id === cid;
    tr.classList.toggle("is-watched", on);
    tr.querySelector(".watch-btn").textContent = on ? "监听中" : "监听";
    if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
  });
  for (const tr of rows.values()) tr.remove();
  if (!items.length) {
    body.append(el("tr", { class: "empty-row" }, el("td", { colspan: "4", class: "muted", text: "当前没有市民在排队" })));
  }
}

/** A 接管 button for a conversation (asks for a second click, see takeOver). */
function takeoverButton(cid, testId, title) {
  const button = el("button", {
    class: "btn btn-sm btn-danger takeover-btn",
    type: "button",
    "data-testid": testId,
    title,
    onclick: () => takeOver(cid, button),
  }, "接管");
  return button;
}

function buildWaitingRow(cid) {
  const takeover = takeoverButton(cid, "takeover-waiting-btn", "不等坐席接入，由我直接服务该市民");
  return el("tr", { class: "w-row", "data-testid": "waiting-row", dataset: { conversationId: cid } },
    el("td", { class: "w-who" }, whoNode(cid)),
    el("td", { class: "w-group" }),
    el("td", { class: "num w-wait" }),
    el("td", {}, el("div", { class: "w-actions" },
      el("button", { class: "btn btn-sm watch-btn", type: "button", "data-testid": "watch-waiting-btn", onclick: () => watch(cid) }, "监听"),
      takeover)));
}

/** The supervisor's own load (they serve what they take over); null before the first board. */
function myLoad() {
  if (!me || !state.board) return null;
  const mine = (state.board.agents || []).find((a) => a.username === me.username);
  if (!mine) return { load: 0, capacity: 0 };
  return { load: Number(mine.load) || 0, capacity: Number(mine.capacity) || 0 };
}

function renderMyLoad() {
  const mine = myLoad();
  ui.myLoad.textContent = mine ? `我的接待 ${mine.load}/${mine.capacity}` : "";
  ui.myLoad.classList.toggle("is-full", !!mine && mine.capacity > 0 && mine.load >= mine.capacity);
}

function renderAgents(agents) {
  const body = ui.agents;
  const rows = new Map();
  for (const tr of body.querySelectorAll("tr.agent-row")) rows.set(tr.dataset.agentId, tr);
  for (const tr of body.querySelectorAll("tr.empty-row")) tr.remove();
  const sorted = [...agents].sort((a, b) =>
    (a.role === "supervisor") - (b.role === "supervisor") || (a.status === "offline") - (b.status === "offline")
      || String(a.username).localeCompare(String(b.username)));
  const seen = new Set();
  sorted.forEach((a, index) => {
    const id = String(a.agent_id);
    seen.add(id);
    let tr = rows.get(id);
    if (!tr) tr = buildAgentRow(id);
    fillAgentRow(tr, a);
    if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
  });
  for (const [id, tr] of rows) if (!seen.has(id)) tr.remove();
  if (!sorted.length) {
    body.append(el("tr", { class: "empty-row" }, el("td", { colspan: "4", class: "muted", text: "还没有坐席登录" })));
  }
}

function buildAgentRow(id) {
  return el("tr", { class: "agent-row", "data-testid": "agent-row", dataset: { agentId: id } },
    el("td", { class: "a-name" }, el("span", { class: "a-display" }), el("span", { class: "a-user muted" })),
    el("td", { class: "a-status" }, el("span", { class: "tag" })),
    el("td", { class: "num a-load" }),
    el("td", { class: "a-convs" }, el("ul", { class: "a-conv-list" })));
}

function fillAgentRow(tr, a) {
  tr.dataset.username = a.username || "";
  tr.dataset.status = a.status || "offline";
  tr.dataset.load = String(a.load ?? 0);
  tr.querySelector(".a-display").textContent = a.display_name || a.username || `坐席 ${a.agent_id}`;
  tr.querySelector(".a-user").textContent = a.role === "supervisor" ? `${a.username} · 班长` : a.username || "";
  const [label, cls] = PRESENCE[a.status] || PRESENCE.offline;
  const tag = tr.querySelector(".a-status .tag");
  tag.textContent = label;
  tag.className = `tag ${cls}`;
  const load = Number(a.load) || 0;
  const cap = Number(a.capacity) || 0;
  const loadCell = tr.querySelector(".a-load");
  loadCell.textContent = `${load}/${cap}`;
  loadCell.classList.toggle("is-full", cap > 0 && load >= cap);

  const list = tr.querySelector(".a-conv-list");
  const convs = Array.isArray(a.conversations) ? a.conversations.map(String) : [];
  const items = new Map();
  for (const li of list.querySelectorAll("li.a-conv")) items.set(li.dataset.conversationId, li);
  convs.forEach((cid, index) => {
    let li = items.get(cid);
    if (!li) li = buildConvItem(cid);
    items.delete(cid);
    li.dataset.agentName = a.display_name || a.username || "";
    fillWho(li.querySelector(".who"), cid);
    li.classList.toggle("is-watched", !!state.watching && state.watching.id === cid);
    li.querySelector(".watch-btn").textContent = state.watching && state.watching.id === cid ? "监听中" : "监听";
    li.querySelector(".takeover-btn").disabled = !!me && a.username === me.username;
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
  for (const li of items.values()) li.remove();
  if (!convs.length && !list.querySelector(".a-conv-none")) {
    list.append(el("li", { class: "a-conv-none muted", text: "空闲" }));
  } else if (convs.length) {
    for (const none of list.querySelectorAll(".a-conv-none")) none.remove();
  }
}

let me = null; // {username} from /api/me

function buildConvItem(cid) {
  const takeover = takeoverButton(cid, "takeover-btn", "把该会话转到我的坐席工作台");
  return el("li", { class: "a-conv", "data-testid": "board-conv", dataset: { conversationId: cid } },
    whoNode(cid),
    el("button", {
      class: "btn btn-sm watch-btn",
      type: "button",
      "data-testid": "watch-btn",
      onclick: () => watch(cid),
    }, "监听"),
    takeover);
}

/** Who a conversation is about (the board's details: citizen, channel, last line), not its id. */
function whoNode(cid) {
  return el("span", { class: "who", "data-testid": "board-who", title: cid },
    el("span", { class: "tag who-channel" }), el("span", { class: "who-name" }), el("span", { class: "who-last muted" }));
}

function fillWho(node, cid) {
  if (!node) return;
  const d = (state.details || {})[cid];
  node.querySelector(".who-channel").textContent = d ? channelLabel(d.channel) : "";
  node.querySelector(".who-channel").classList.toggle("hidden", !d);
  node.querySelector(".who-name").textContent = d ? d.citizen_name : `会话 ${shortId(cid)}`;
  node.querySelector(".who-last").textContent = d && d.last_text ? `“${d.last_text}”` : "";
  node.querySelector(".who-last").title = d ? d.last_text : "";
}

function refreshConvButtons() {
  for (const li of [...ui.agents.querySelectorAll("li.a-conv"), ...ui.waiting.querySelectorAll("tr.w-row")]) {
    const on = !!state.watching && state.watching.id === li.dataset.conversationId;
    li.classList.toggle("is-watched", on);
    li.querySelector(".watch-btn").textContent = on ? "监听中" : "监听";
  }
}

/* -------------------------------------------------------------- take over */

function takeOver(cid, button) {
  if (button.dataset.confirm !== "1") {
    const mine = myLoad();
    const full = !!mine && mine.capacity > 0 && mine.load >= mine.capacity;
    button.dataset.confirm = "1";
    button.textContent = full ? "已满，仍接管？" : "确认接管？";
    button.title = mine ? `您当前接待 ${mine.load}/${mine.capacity}，接管不受上限限制` : button.title;
    // the question stays until answered: a click elsewhere (or Esc) withdraws it, time does not
    const withdraw = (ev) => {
      if (ev.type === "keydown" ? ev.key !== "Escape" : button.contains(ev.target)) return;
      document.removeEventListener("pointerdown", withdraw, true);
      document.removeEventListener("keydown", withdraw, true);
      if (button.dataset.confirm === "1") { delete button.dataset.confirm; button.textContent = "接管"; }
    };
    document.addEventListener("pointerdown", withdraw, true);
    document.addEventListener("keydown", withdraw, true);
    return;
  }
  delete button.dataset.confirm;
  button.textContent = "接管";
  if (!sendFrame({ type: "take_over", conversation_id: cid })) return;
  state.takingOver = cid; // its "assigned" frame opens it here, to answer in place
  button.disabled = true;
  setTimeout(() => { button.disabled = false; }, 3000);
}

function handleAssigned(frame) {
  const id = String(frame.conversation_id);
  state.mine.add(id);
  renderTakeoverBanner(); // the `taken_over` answer says how it went (and the load)
  // what I take over (or had taken over before a reload, and am watching) opens in the 监听 panel with a reply box
  if (state.takingOver === id || (state.watching && state.watching.id === id)) {
    state.takingOver = null;
    if (state.watching && state.watching.id !== id) sendFrame({ type: "unwatch", conversation_id: state.watching.id });
    state.watching = { id, name: "", messages: new Map(), memo: null, ended: false, loading: true };
    handleWatching(frame);
    refreshConvButtons();
    ui.replyInput.focus();
  }
}

function handleTakenOver(frame) {
  const load = Number(frame.load) || 0;
  const cap = Number(frame.capacity) || 0;
  toast(frame.over_capacity
    ? `已接管。您当前接待 ${load} 个会话，已超过上限 ${cap}，请到“坐席工作台”服务`
    : `已接管（您当前接待 ${load}/${cap}），可在右侧直接回复市民`);
}

function handleClosedMine(frame) {
  state.mine.delete(String(frame.conversation_id));
  renderTakeoverBanner();
  if (state.watching && state.watching.id === String(frame.conversation_id)) renderWatch(false);
}

function renderTakeoverBanner() {
  const n = state.mine.size;
  ui.takeoverBanner.textContent = "";
  ui.takeoverBanner.classList.toggle("hidden", n === 0);
  if (n === 0) return;
  ui.takeoverBanner.append(`您正在亲自服务 ${n} 个会话：可在右侧“监听”中直接回复，或到 `,
    el("a", { href: "/agent", "data-testid": "goto-agent" }, "坐席工作台"), " 回复、转接和结束会话。");
}

/* -------------------------------------------------------------------- watch */

function watch(cid) {
  if (state.watching && state.watching.id === cid) return;
  if (state.watching) sendFrame({ type: "unwatch", conversation_id: state.watching.id });
  if (!sendFrame({ type: "watch", conversation_id: cid })) return;
  state.watching = { id: cid, name: "", messages: new Map(), memo: null, ended: false, loading: true };
  renderWatch(true);
  refreshConvButtons();
}

function unwatch() {
  if (!state.watching) return;
  sendFrame({ type: "unwatch", conversation_id: state.watching.id });
  state.watching = null;
  renderWatch(true);
  refreshConvButtons();
}

function handleWatching(frame) {
  const id = String(frame.conversation_id);
  if (!state.watching) { // the page was reloaded: the hub remembered what it watched
    state.watching = { id, name: "", messages: new Map(), memo: null, ended: false, loading: true };
    refreshConvButtons();
  }
  if (state.watching.id !== id) return;
  const w = state.watching;
  w.loading = false;
  const c = frame.screen_pop && frame.screen_pop.citizen;
  w.name = (c && c.name) || "访客";
  w.group = frame.group || "";
  w.memo = frame.memo && frame.memo.text ? frame.memo : null;
  for (const m of frame.transcript || []) w.messages.set(String(m.id ?? Math.random()), m);
  renderWatch(true);
}

function handleMessage(frame) {
  const msg = frame.message;
  if (!msg || !state.watching || String(msg.conversation_id) !== state.watching.id) return;
  if (!frame.watching && !state.mine.has(state.watching.id)) return;
  state.watching.messages.set(String(msg.id ?? Math.random()), msg);
  renderWatch(false);
}

function checkWatchedStillServed() {
  const w = state.watching;
  if (!w || w.loading || !state.board) return;
  const served = (state.board.agents || []).find((a) => (a.conversations || []).map(String).includes(w.id));
  const waiting = (state.board.waiting || []).find((q) => String(q.conversation_id) === w.id);
  const ended = !served && !waiting;
  w.served = !!served;
  w.agent = served ? (served.display_name || served.username) : waiting ? "" : w.agent;
  if (waiting) w.group = waiting.group || w.group;
  if (ended !== w.ended) { w.ended = ended; renderWatch(false); } else renderWatchTitle();
}

function renderWatchTitle() {
  const w = state.watching;
  if (!w) { ui.watchTitle.textContent = ""; return; }
  const d = (state.details || {})[w.id];
  const parts = [w.name || (d ? `${d.citizen_name}（${channelLabel(d.channel)}）` : `会话 ${shortId(w.id)}`)];
  if (w.agent) parts.push(`坐席 ${w.agent}`);
  else if (!w.ended && w.served === false) parts.push("排队中");
  if (w.group) parts.push(`${w.group}技能组`);
  ui.watchTitle.textContent = parts.join(" · ");
}

function renderWatch(forceScroll) {
  const w = state.watching;
  ui.watchEmpty.classList.toggle("hidden", !!w);
  ui.watchTranscript.classList.toggle("hidden", !w);
  const mine = !!w && state.mine.has(w.id);
  ui.whisperForm.classList.toggle("hidden", !w || mine); // my own conversation: I answer, nobody to whisper to
  ui.replyForm.classList.toggle("hidden", !mine);
  ui.unwatch.classList.toggle("hidden", !w);
  ui.watchPanel.dataset.conversationId = w ? w.id : "";
  renderWatchTitle();
  updateWhisperControls();
  updateReplyControls();
  const t = ui.watchTranscript;
  t.textContent = "";
  if (!w) return;
  const stick = forceScroll || t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  if (w.loading) {
    t.append(el("p", { class: "empty", text: "正在加载对话…" }));
    return;
  }
  if (w.memo) {
    t.append(el("div", { class: "transfer-memo", "data-testid": "transfer-memo" },
      el("div", { class: "tm-head" },
        el("span", { class: "tm-label", text: "转接备注" }),
        w.memo.from ? el("span", { class: "tm-from", text: `来自 ${w.memo.from}` }) : null),
      el("div", { class: "tm-text", text: w.memo.text })));
  }
  const msgs = [...w.messages.values()].sort((a, b) => tsOf(a.created_at) - tsOf(b.created_at));
  for (const m of msgs) t.append(buildMsg(m, w));
  if (w.ended) {
    t.append(el("div", { class: "msg", dataset: { sender: "system" } },
      el("div", { class: "msg-bubble" }, el("div", { class: "msg-text", text: "该会话已不在坐席手中（已结束或已转出）" }))));
  }
  if (stick) t.scrollTop = t.scrollHeight;
}

function buildMsg(m, w) {
  const whisper = !!(m.meta && m.meta.whisper);
  const sender = whisper ? "whisper" : (["bot", "citizen", "agent", "system"].includes(m.sender) ? m.sender : "system");
  const textEl = messageBody(m);
  const node = el("div", {
    class: whisper ? "msg whisper" : "msg",
    "data-testid": "watch-message",
    dataset: { sender, id: m.id != null ? String(m.id) : "" },
  });
  if (sender !== "system") {
    const name = whisper ? (m.sender_name || "班长") : sender === "citizen" ? (m.sender_name || w.name)
      : sender === "agent" ? (m.sender_name || "坐席") : "";
    node.append(el("div", { class: "msg-meta" },
      el("span", { class: "msg-label", text: whisper ? "悄悄话" : LABEL[sender] || "" }),
      name ? el("span", { class: "msg-name", text: name }) : null,
      el("span", { class: "msg-time", text: formatTime(m.created_at) }),
      whisper ? el("span", { class: "whisper-private", text: "仅坐席可见" }) : null));
  }
  node.append(el("div", { class: "msg-bubble" }, textEl));
  return node;
}

function updateWhisperControls() {
  const w = state.watching;
  // a whisper goes to the serving agent: none while the citizen waits in the queue
  const usable = !!w && !w.loading && !w.ended && w.served !== false && state.online;
  ui.whisperInput.disabled = !w || w.ended;
  ui.whisperSend.disabled = !usable || ui.whisperInput.value.trim() === "" || ui.whisperInput.value.length > 500;
}

function sendWhisper(ev) {
  if (ev) ev.preventDefault();
  const w = state.watching;
  const text = ui.whisperInput.value.trim();
  if (!w || w.ended || !text) return;
  if (!sendFrame({ type: "whisper", conversation_id: w.id, text })) return;
  ui.whisperInput.value = "";
  updateWhisperControls();
  ui.whisperInput.focus();
}

/* 回复市民: a conversation I took over is answered right here (the same reply frame the console sends) */

function updateReplyControls() {
  const w = state.watching;
  const mine = !!w && state.mine.has(w.id);
  const text = ui.replyInput.value.trim();
  ui.replyInput.disabled = !mine;
  ui.replySend.disabled = !mine || !state.online || !text || ui.replyInput.value.length > REPLY_MAX;
}

function sendReply(ev) {
  if (ev) ev.preventDefault();
  const w = state.watching;
  const text = ui.replyInput.value.trim();
  if (!w || !state.mine.has(w.id) || !text || text.length > REPLY_MAX) return;
  if (!sendFrame({ type: "reply", conversation_id: w.id, text, client_id: uuid() })) return;
  ui.replyInput.value = "";
  updateReplyControls();
  ui.replyInput.focus();
}

/* --------------------------------------------------------------- connection */

function handleError(frame) {
  const reason = frame.reason || "操作失败，请稍后再试";
  if (frame.code === "forbidden") {
    ui.banner.textContent = "只有班长可以使用班长看板。";
    ui.banner.classList.add("banner-error");
    ui.banner.classList.remove("hidden");
  }
  toast(reason);
}

function handleFrame(frame) {
  switch (frame.type) {
    case "board": renderBoard(frame); break;
    case "watching": handleWatching(frame); break;
    case "message": handleMessage(frame); break;
    case "assigned": handleAssigned(frame); break;
    case "closed": handleClosedMine(frame); break;
    case "taken_over": handleTakenOver(frame); break;
    case "error": handleError(frame); break;
    default: break; // queue, presence, ack, pong: the 坐席工作台's business
  }
}

/** Ask for the board (and the watched conversation again) on every new socket; keep the waits fresh. */
function syncBoard(ws) {
  ws.send(JSON.stringify({ type: "board" }));
  if (state.watching) ws.send(JSON.stringify({ type: "watch", conversation_id: state.watching.id }));
  clearInterval(state.refreshTimer);
  state.refreshTimer = setInterval(() => {
    if (state.ws === ws && ws.readyState === WebSocket.OPEN && !document.hidden) ws.send(JSON.stringify({ type: "board" }));
  }, REFRESH_MS);
}

/** A dropped socket: stop refreshing; the watched transcript shows as loading until the next socket resends it. */
function pauseBoardSync() {
  clearInterval(state.refreshTimer);
  if (state.watching) { state.watching.messages.clear(); state.watching.loading = true; renderWatch(true); }
}

const connect = keepStaffSocket(state, {
  path: "/ws/agent",
  page: "/supervisor",
  dot: ui.dot,
  banner: ui.banner,
  onOpen: syncBoard,
  onFrame: handleFrame,
  onDrop: pauseBoardSync,
  onOnlineChange: () => { updateWhisperControls(); updateReplyControls(); },
});

/* -------------------------------------------------------------------- wire */

ui.unwatch.addEventListener("click", unwatch);
ui.whisperForm.addEventListener("submit", sendWhisper);
ui.whisperInput.addEventListener("input", updateWhisperControls);
ui.replyForm.addEventListener("submit", sendReply);
ui.replyInput.addEventListener("input", updateReplyControls);
ui.replyInput.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) sendReply(ev);
});
ui.whisperInput.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) sendWhisper(ev);
});

renderWatch(true);
initStaffHeader("/supervisor").then((user) => {
  if (user) me = { username: user.username };
  renderMyLoad();
});
const setWaitingNow = startToday($("board-today"));
connect();
