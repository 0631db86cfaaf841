// Agent console: speaks the /ws/agent protocol (docs/design.md, "Agent console WebSocket").
// This entry module routes the socket's frames to the section modules under /static/agent/ and wires the page.
import { initStaffHeader, keepStaffSocket } from "/static/common.js";
import { handleAssist, searchKb } from "/static/agent/assist.js";
import { cannedKey, closeCanned, hideCannedDialog, onSlashInput, openCanned, openCannedManager, resetCannedForm, saveCanned } from "/static/agent/canned.js";
import { handleNoteAck, handleTyping, sendReply, setMode, signalTyping, updateReplyControls } from "/static/agent/composer.js";
import { citizenSaved, handleAck, handleCitizenPresence, handleAssigned, handleClosed, handleError, handleMessage, handleSync, handleTransferred } from "/static/agent/conversations.js";
import { closeConversation, handleAgents, hideCloseDialog, hideTransferDialog, openTransfer, returnToBot, showDialogError, submitClose, submitTransfer, updateTransferControls } from "/static/agent/dialogs.js";
import { changePresence, handlePresence } from "/static/agent/presence.js";
import { renderQueue, tickWaiting } from "/static/agent/queue.js";
import { $, state, ui } from "/static/agent/state.js";
import { renderConversation, renderTabs } from "/static/agent/transcript.js";

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
  ui.assistSearch.addEventListener("input", searchKb);
  document.addEventListener("crm:citizen-saved", (ev) => citizenSaved(ev.detail));
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
    case "citizen_presence": handleCitizenPresence(frame); break;
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
