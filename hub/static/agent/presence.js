// My status (在线/忙碌/离开) as the hub reports it, and changing it.
import { $, PRESENCE_LABEL, sendFrame, state, toast, ui } from "/static/agent/state.js";

/* ----------------------------------------------------------------- presence */

export function handlePresence(frame) {
  const status = String(frame.status || "");
  state.presence = status;
  if ([...ui.presence.options].some((o) => o.value === status)) ui.presence.value = status;
  ui.presence.dataset.status = status;
  ui.presence.disabled = !state.online;
}

export function changePresence() {
  const status = ui.presence.value;
  if (!sendFrame({ type: "presence", status })) {
    if (state.presence) ui.presence.value = state.presence;
    return;
  }
  ui.presence.dataset.status = status;
  toast(`状态已切换为“${PRESENCE_LABEL[status]}”${status === "away" ? "，系统不会再为您分配新会话" : ""}`);
}
