// The conversation tabs and the selected conversation's transcript.
import { messageBody } from "/static/attachments.js";
import { channelLabel, el, formatTime } from "/static/common.js";
import { renderAssist } from "/static/agent/assist.js";
import { renderTyping, updateReplyControls } from "/static/agent/composer.js";
import { absenceText, dismiss, select } from "/static/agent/conversations.js";
import { updateTitle } from "/static/agent/queue.js";
import { renderScreenPop } from "/static/agent/screen_pop.js";
import { buildNote, buildWhisper, isInternal, isNote, isWhisper } from "/static/agent/staff_only.js";
import { $, state, tsOf, ui } from "/static/agent/state.js";

/* ---------------------------------------------------------------- rendering */

export function renderTabs() {
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
          : el("div", { class: "ct-last", text: conv.ended ? conv.endText : (absenceText(conv) || (last ? last.text : "")) })),
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

export function renderConversation(forceScroll) {
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
  ui.convGroup.textContent = conv.group ? `${conv.group}技能组` : "";
  ui.convGroup.classList.toggle("hidden", !conv.group);
  const away = absenceText(conv);
  ui.convState.textContent = conv.ended ? conv.endText : conv.busy ? "处理中…" : away || "服务中";
  ui.convState.className = conv.ended ? "tag tag-gray" : away ? "tag tag-orange" : "tag tag-green";

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
  if (stick) keepAtBottom(t);
  updateReplyControls();
  renderTyping();
  renderAssist(conv);
  renderScreenPop(conv);
}

/**
 * Scroll to the newest line, and stay there while pictures above it load and grow (a thumbnail is
 * 48 px until its image arrives): unless the agent has scrolled away meanwhile.
 */
function keepAtBottom(t) {
  t.scrollTop = t.scrollHeight;
  let pinned = t.scrollTop;
  for (const img of t.querySelectorAll("img")) {
    if (img.complete) continue;
    img.addEventListener("load", () => {
      if (!img.isConnected || Math.abs(t.scrollTop - pinned) > 2) return;
      t.scrollTop = t.scrollHeight;
      pinned = t.scrollTop;
    }, { once: true });
  }
}
