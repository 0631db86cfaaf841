// What only staff see: a supervisor's 悄悄话 and 内部备注; neither counts as the citizen's words.
import { appendLinkified, el, formatTime } from "/static/common.js";
import { $ } from "/static/agent/state.js";

export function isWhisper(msg) {
  return !!(msg && msg.meta && typeof msg.meta === "object" && msg.meta.whisper);
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

export function buildWhisper(m) {
  return buildStaffOnly(m, "whisper", "悄悄话", "班长");
}

export function buildNote(m) {
  return buildStaffOnly(m, "note", "内部备注", "坐席");
}

/* --------------------------------------------------- console features */
// 内部备注, 快捷回复, 智能推荐, typing both ways, attachments, the title-bar count.

export function isNote(msg) {
  return !!(msg && msg.meta && typeof msg.meta === "object" && msg.meta.internal && msg.meta.note);
}

export function isInternal(msg) {
  return isWhisper(msg) || isNote(msg);
}

/** New work for the unread badge and the title count: what the citizen, the bot or the system said. */
export function countsAsUnread(msg) {
  return !!msg && msg.sender !== "agent" && !isNote(msg);
}
