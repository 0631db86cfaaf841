// 通话记录: search calls by number, agent, date and outcome; open one to play its recording (both sides,
// drawn as a waveform: 市民 above, 坐席/智能客服 below; click to seek), read its text for QA, and export
// its recording or a zip of the search's recordings.
import { el, formatDateTime, initStaffHeader } from "/static/common.js";

const $ = (id) => document.getElementById(id);
const form = $("call-filters");
const body = $("calls-body");
const detail = $("call-detail");
const errorBox = $("calls-error");
const agents = new Map();
const DISPOSITION = { resolved: "已解决", unresolved: "未解决", ticket_created: "已建工单", citizen_left: "市民挂断",
  transferred_out: "已转出", spam: "骚扰电话", other: "其他" };
const WHO = { citizen: "市民", bot: "智能客服", agent: "坐席", system: "系统" };
const IVR = { greeting: "欢迎语", menu: "菜单", speech: "语音提问", no_input: "无输入", no_match: "未识别",
  abandoned: "放弃", hold: "保持", resume: "恢复", click_to_call: "外呼" };

function params() {
  const p = new URLSearchParams();
  for (const [key, id] of [["number", "f-number"], ["agent_id", "f-agent"], ["outcome", "f-outcome"], ["date_from", "f-from"], ["date_to", "f-to"]]) {
    const v = $(id).value.trim();
    if (v) p.set(key, v);
  }
  return p;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.classList.toggle("hidden", !text);
}

function ivrText(path) {
  return (path || []).map((p) => IVR[p] || p.replace(/^key:/, "按键 ").replace(/^group:/, "技能组 ")
    .replace(/^agent:(\d+)/, (_m, id) => `坐席 ${agentName(id)}`)).join(" → ");
}
function agentName(id) { return id == null ? "" : (agents.get(Number(id)) || `#${id}`); }
function secs(v) { return v == null ? "" : Number(v).toFixed(0); }

async function search(ev) {
  if (ev) ev.preventDefault();
  showError("");
  const resp = await fetch(`/api/calls?${params()}`, { credentials: "same-origin" });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) { showError(data.reason || "查询失败"); return; }
  body.replaceChildren(...data.calls.map(row));
  $("call-count").textContent = `共 ${data.calls.length} 条`;
  $("calls-empty").classList.toggle("hidden", data.calls.length > 0);
}

function row(c) {
  const tr = el("tr", { "data-testid": "call-row", dataset: { id: c.id }, tabindex: 0 },
    el("td", { text: formatDateTime(c.started_at) }),
    el("td", { text: c.direction === "inbound" ? "呼入" : "外呼" }),
    el("td", { "data-testid": "call-caller", text: c.caller }),
    el("td", { text: c.callee }),
    el("td", { text: (c.agent_ids || []).map(agentName).join("、") }),
    el("td", { class: "muted", text: ivrText(c.ivr_path) }),
    el("td", { class: "num", text: secs(c.wait_seconds) }),
    el("td", { class: "num", text: secs(c.talk_seconds) }),
    el("td", { "data-testid": "call-outcome", text: c.outcome_label }),
    el("td", { text: DISPOSITION[c.disposition] || c.disposition || "" }));
  const open = () => { for (const r of body.children) r.removeAttribute("aria-selected"); tr.setAttribute("aria-selected", "true"); show(c); };
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  return tr;
}

function clock(s) {
  s = Math.max(0, s || 0);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${(s % 60).toFixed(1).padStart(4, "0")}`;
}

async function show(c) {
  detail.replaceChildren();
  detail.classList.remove("hidden");
  const dl = el("dl", null);
  for (const [k, v] of [["主叫", c.caller], ["被叫", c.callee], ["开始", formatDateTime(c.started_at)],
    ["结束", c.ended_at ? formatDateTime(c.ended_at) : "通话中"], ["坐席", (c.agent_ids || []).map(agentName).join("、") || "无"],
    ["语音导航", ivrText(c.ivr_path) || "无"], ["排队", `${secs(c.wait_seconds) || 0} 秒`], ["通话", `${secs(c.talk_seconds) || 0} 秒`],
    ["结果", c.outcome_label], ["结束原因", DISPOSITION[c.disposition] || c.disposition || "无"]]) dl.append(el("dt", { text: k }), el("dd", { text: v }));
  detail.append(el("h3", { text: "通话详情" }), dl);
  if (!c.has_recording) { detail.append(el("p", { class: "muted", text: "这通电话没有录音（可能已超过保存期限）。" })); return; }
  const audio = el("audio", { preload: "auto", src: `/api/calls/${c.id}/recording`, "data-testid": "call-audio" });
  const wave = el("div", { class: "waveform", "data-testid": "waveform", title: "点击跳转" });
  const canvas = el("canvas", null);
  const head = el("div", { class: "playhead" });
  wave.append(canvas, head);
  const time = el("span", { class: "time", "data-testid": "play-time", text: "00:00.0" });
  const play = el("button", { class: "btn btn-primary btn-sm", type: "button", "data-testid": "play", text: "播放" });
  play.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  audio.addEventListener("play", () => { play.textContent = "暂停"; });
  audio.addEventListener("pause", () => { play.textContent = "播放"; });
  const duration = () => (Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : c.recording_seconds || 1);
  audio.addEventListener("timeupdate", () => {
    time.textContent = `${clock(audio.currentTime)} / ${clock(duration())}`;
    head.style.left = `${(audio.currentTime / duration()) * 100}%`;
  });
  wave.addEventListener("click", (e) => {
    const r = wave.getBoundingClientRect();
    audio.currentTime = ((e.clientX - r.left) / r.width) * duration();
  });
  const exportOne = el("a", { class: "btn btn-sm", href: `/api/calls/${c.id}/export`, "data-testid": "export-one", text: "导出录音" });
  detail.append(wave, el("div", { class: "player-controls" }, play, time, exportOne), audio);
  const segments = el("ul", { class: "segments", "data-testid": "segments" });
  for (const s of c.segments || []) {
    const li = el("li", { "data-testid": "segment" }, el("span", { class: "at", text: clock(s.start_s) }),
      el("span", { class: "who", text: WHO[s.speaker] || s.speaker }), s.text || "（未识别）");
    li.addEventListener("click", () => { audio.currentTime = s.start_s; audio.play(); });
    segments.append(li);
  }
  if (!segments.children.length) segments.append(el("li", { class: "muted", text: "（这通电话没有转写文本）" }));
  detail.append(el("h4", { text: "通话文本" }), segments);
  const resp = await fetch(`/api/calls/${c.id}/waveform`, { credentials: "same-origin" });
  if (resp.ok) draw(canvas, (await resp.json()).peaks);
}

function draw(canvas, peaks) {
  const w = canvas.clientWidth * devicePixelRatio, h = canvas.clientHeight * devicePixelRatio;
  canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d");
  const colors = ["#4fb3ff", "#7ddc8a"];
  const top = Math.max(0.05, ...peaks.flat());  // scaled to the loudest moment: quiet lines stay visible
  peaks.forEach((channel, i) => {
    g.fillStyle = colors[i % 2];
    const mid = h / 2, n = channel.length || 1;
    channel.forEach((p, x) => {
      const bar = Math.max(1, (p / top) * (h / 2 - 4));
      const px = (x / n) * w;
      if (i === 0) g.fillRect(px, mid - bar, Math.max(1, w / n - 0.5), bar);
      else g.fillRect(px, mid, Math.max(1, w / n - 0.5), bar);
    });
  });
  g.fillStyle = "#ffffff55"; g.fillRect(0, h / 2, w, 1);
  g.font = `${12 * devicePixelRatio}px sans-serif`; g.fillStyle = "#dde";
  g.fillText("市民", 6, 14 * devicePixelRatio); g.fillText("坐席/智能客服", 6, h - 6);
}

$("export-zip").addEventListener("click", async () => {
  showError("");
  const resp = await fetch(`/api/calls/export?${params()}`, { credentials: "same-origin" });
  if (!resp.ok) { showError((await resp.json().catch(() => ({}))).reason || "导出失败"); return; }
  const blob = await resp.blob();
  const a = el("a", { href: URL.createObjectURL(blob), download: "通话录音.zip" });
  document.body.append(a); a.click(); a.remove();
});

form.addEventListener("submit", search);
(async () => {
  await initStaffHeader("/calls");
  const resp = await fetch("/api/crm/staff", { credentials: "same-origin" });
  if (resp.ok) {
    for (const s of (await resp.json()).items) {
      agents.set(s.id, s.display_name || s.username);
      $("f-agent").append(el("option", { value: s.id, text: s.display_name || s.username }));
    }
  }
  await search();
})();
