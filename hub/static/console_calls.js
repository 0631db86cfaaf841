// The agent console's telephone: when the open conversation is a call (channel 电话), a call bar with
// the number, the talk time, 保持/恢复 and 挂机 (with a disposition); 外呼 calls the conversation's
// citizen back (the agent's phone rings first); 我的分机 sets the SIP address the hub rings.
// Loaded by agent.html with one line; reads only #conv-view's data-conversation-id.
import { el, jsonRequest, formatTime } from "/static/common.js";

const DISPOSITIONS = [
  ["resolved", "已解决"], ["unresolved", "未解决"], ["ticket_created", "已建工单"],
  ["citizen_left", "市民挂断"], ["transferred_out", "已转出"], ["spam", "骚扰电话"], ["other", "其他"],
];
const STATUS = { active: "通话中", answered: "通话中", bot: "智能应答", abandoned: "排队放弃", no_answer: "未接通", failed: "呼叫失败" };

const view = document.getElementById("conv-view");
const head = view && view.querySelector(".conv-head");
const bar = el("div", { class: "call-bar hidden", "data-testid": "call-bar", role: "region", "aria-label": "电话" });
let current = null;   // the call record shown
let timer = 0;
let poll = 0;

function seconds(iso) { return iso ? (Date.now() - Date.parse(iso)) / 1000 : 0; }
function clock(s) {
  s = Math.max(0, Math.floor(s));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

async function post(url, body) {
  const resp = await jsonRequest("POST", url, body || {});
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.reason || "操作失败，请稍后再试");
  return data;
}

function say(text) {
  const note = bar.querySelector(".call-note");
  if (note) note.textContent = text;
}

function render() {
  bar.replaceChildren();
  if (!current) { bar.classList.add("hidden"); return; }
  const c = current;
  const live = !c.ended_at;
  const number = c.direction === "inbound" ? c.caller : c.callee;
  const status = live ? (c.on_hold ? "保持中" : (c.answered_at ? "通话中" : "振铃中")) : "通话已结束";
  const since = c.answered_at || c.started_at;
  bar.append(
    el("span", { class: "call-icon", "aria-hidden": "true", text: "☎" }),
    el("span", { class: "call-number", "data-testid": "call-number", text: number }),
    el("span", { class: `tag ${live ? "tag-green" : ""}`, "data-testid": "call-status", text: status }),
    el("span", { class: "call-clock", "data-testid": "call-clock", text: live ? clock(seconds(since)) : `${formatTime(c.ended_at)} 结束` }),
  );
  if (c.ivr_path && c.ivr_path.length) {
    bar.append(el("span", { class: "muted call-ivr", title: "语音导航路径", text: ivrText(c.ivr_path) }));
  }
  if (live && c.answered_at) {
    bar.append(el("button", {
      class: "btn btn-sm", type: "button", "data-testid": "call-hold",
      text: c.on_hold ? "恢复通话" : "保持",
      onclick: async () => {
        try {
          const r = await post(`/api/calls/${c.id}/${c.on_hold ? "resume" : "hold"}`);
          current.on_hold = r.on_hold;
          render();
        } catch (e) { say(e.message); }
      },
    }));
    const select = el("select", { class: "field field-sm", "data-testid": "call-disposition", "aria-label": "结束原因" },
      ...DISPOSITIONS.map(([v, label]) => el("option", { value: v, text: label })));
    bar.append(select, el("button", {
      class: "btn btn-sm btn-danger", type: "button", "data-testid": "call-hangup", text: "挂机",
      onclick: async () => {
        try { await post(`/api/calls/${c.id}/hangup`, { disposition: select.value }); say("已挂机"); refresh(); }
        catch (e) { say(e.message); }
      },
    }));
  }
  bar.append(el("span", { class: "call-note muted", role: "status", "data-testid": "call-note" }));
  bar.classList.remove("hidden");
}

function ivrText(path) {
  const words = { greeting: "欢迎语", menu: "菜单", speech: "语音提问", no_input: "无输入", no_match: "未识别", abandoned: "放弃" };
  return path.map((p) => words[p] || p.replace(/^key:/, "按键").replace(/^group:/, "技能组 ").replace(/^agent:.*/, "坐席")).join(" → ");
}

async function refresh() {
  const id = view.dataset.conversationId;
  if (!id) { current = null; render(); return; }
  try {
    const resp = await fetch(`/api/calls/by-conversation/${encodeURIComponent(id)}`, { credentials: "same-origin" });
    const data = resp.ok ? await resp.json() : null;
    if (view.dataset.conversationId !== id) return;
    const onHold = current && current.id === (data && data.id) ? current.on_hold : false;
    current = data ? { ...data, on_hold: onHold } : null;
  } catch (_) { /* keep what is shown; the next poll tries again */ }
  render();
}

function watch() {
  clearInterval(poll);
  refresh();
  poll = setInterval(refresh, 3000);
}

function dialButton() {
  const actions = view && view.querySelector(".conv-actions");
  if (!actions) return;
  const button = el("button", {
    class: "btn btn-sm", type: "button", "data-testid": "call-back", text: "外呼", title: "先呼叫您的分机，接通后再呼叫市民",
    onclick: async () => {
      try {
        await post("/api/calls/dial", { conversation_id: view.dataset.conversationId });
        say("正在呼叫您的分机…");
        current = current || null;
      } catch (e) {
        bar.classList.remove("hidden");
        if (!bar.querySelector(".call-note")) bar.append(el("span", { class: "call-note muted", role: "status", "data-testid": "call-note" }));
        say(e.message);
      }
    },
  });
  actions.prepend(button);
}

function extensionLink() {
  const nav = document.querySelector(".app-header nav");
  if (!nav) return;
  const dialog = el("dialog", { class: "call-ext-dialog", "data-testid": "ext-dialog" });
  const input = el("input", { class: "field", type: "text", maxlength: 200, "data-testid": "ext-uri",
    placeholder: "sip:8001@192.168.1.20:5060", "aria-label": "分机 SIP 地址" });
  const error = el("p", { class: "crm-error", role: "alert" });
  const form = el("form", { method: "dialog" },
    el("h3", { text: "我的分机" }),
    el("p", { class: "muted", text: "来电转人工和外呼时，系统会呼叫这个话机。" }), input, error,
    el("div", { class: "dialog-actions" },
      el("button", { class: "btn btn-primary btn-sm", type: "submit", "data-testid": "ext-save", text: "保存" }),
      el("button", { class: "btn btn-sm", type: "button", text: "取消", onclick: () => dialog.close() })));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const resp = await jsonRequest("PUT", "/api/calls/extension", { sip_uri: input.value.trim() });
    const data = await resp.json().catch(() => ({}));
    if (resp.ok) dialog.close(); else error.textContent = data.reason || "保存失败";
  });
  dialog.append(form);
  document.body.append(dialog);
  nav.append(el("a", { href: "#extension", role: "button", "data-testid": "nav-extension", text: "我的分机",
    onclick: async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      const resp = await fetch("/api/calls/extension", { credentials: "same-origin" });
      input.value = resp.ok ? (await resp.json()).sip_uri : "";
      dialog.showModal();
    } }));
  nav.append(el("a", { href: "/calls", text: "通话记录" }));
}

if (view && head) {
  head.after(bar);
  dialButton();
  extensionLink();
  new MutationObserver(watch).observe(view, { attributes: true, attributeFilter: ["data-conversation-id"] });
  timer = setInterval(() => { if (current && !current.ended_at) { const n = bar.querySelector(".call-clock"); if (n) n.textContent = clock(seconds(current.answered_at || current.started_at)); } }, 1000);
  if (view.dataset.conversationId) watch();
}
