// 排队列表: the waiting citizens, their waiting clocks, 接入, and the title-bar count.
import { channelLabel, el, formatWaiting, toMillis } from "/static/common.js";
import { beep } from "/static/agent/beep.js";
import { handoffReasonLabel } from "/static/agent/labels.js";
import { $, BASE_TITLE, sendFrame, state, ui } from "/static/agent/state.js";

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

export function renderQueue(items) {
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
    el("div", { class: "qi-why" },
      el("span", { class: "tag tag-gray qi-group", "data-testid": "queue-group" }),
      el("span", { class: "qi-reason", "data-testid": "queue-reason" })),
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
  const group = li.querySelector(".qi-group");
  group.textContent = item.group ? `${item.group}技能组` : "";
  group.classList.toggle("hidden", !item.group);
  const reason = li.querySelector(".qi-reason");
  reason.textContent = handoffReasonLabel(item.reason, item.intent);
  reason.title = reason.textContent ? `转人工${reason.textContent}` : "";
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

export function tickWaiting() {
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

export function failAccepts(convId) {
  if (convId) state.pendingAccepts.delete(convId);
  else state.pendingAccepts.clear();
  renderQueue(state.queue);
}

/** "(3) 坐席工作台 - 政务云客服": citizens waiting plus unread messages in my tabs. */
export function updateTitle() {
  let n = state.queue.length;
  for (const conv of state.convs.values()) n += conv.unread;
  document.title = n > 0 ? `(${n}) ${BASE_TITLE}` : BASE_TITLE;
}
