// 质检中心 (/qa): inspection tasks, transcript search, re-review (复核) decisions, content review, and
// the versioned rules and score sheet. API: hub/routes/qa.py.
import { el, formatDateTime, channelLabel, initStaffHeader, showToast } from "/static/common.js";
import {
  api, REASON, STATUS, itemSummary, renderInspections, renderTranscript, scoreText, sheetForm,
} from "/static/qa_common.js";

const $ = (id) => document.getElementById(id);
const state = { me: null, kinds: {}, rules: [], sheet: null, item: null };
const toast = (text) => showToast($("toast"), text);
const isSupervisor = () => state.me && (state.me.role === "supervisor" || state.me.role === "admin");

// -- tabs ------------------------------------------------------------------------------------------
const loaders = { tasks: loadTasks, search: () => {}, appeals: loadAppeals, content: loadFlagged, rules: loadRules, sheets: loadSheet };
for (const tab of document.querySelectorAll(".qa-tabs .tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".qa-tabs .tab")) t.classList.toggle("active", t === tab);
    for (const body of document.querySelectorAll(".tab-body")) body.classList.toggle("hidden", body.id !== `tab-${tab.dataset.tab}`);
    loaders[tab.dataset.tab]();
  });
}

// -- tasks -----------------------------------------------------------------------------------------
async function loadTasks() {
  const res = await api("GET", `/api/qa/tasks?status=${$("task-status").value}`);
  if (!res.ok) return toast(res.data.reason);
  $("task-rows").replaceChildren(...res.data.items.map((t) => el("tr", {
    class: "clickable", "data-item-id": t.item_id, onclick: () => openItem(t.item_id),
  }, el("td", null, t.agent_name), el("td", null, t.day), el("td", null, channelLabel(t.channel)),
  el("td", null, REASON[t.reason] || t.reason), el("td", null, scoreText(t.auto_score)),
  el("td", null, t.inspector_name), el("td", null, formatDateTime(t.due_at)))));
  $("task-empty").classList.toggle("hidden", res.data.items.length > 0);
}
$("task-status").addEventListener("change", loadTasks);
$("weekly").addEventListener("click", async () => {
  const res = await api("POST", "/api/qa/sampling/weekly", {});
  toast(res.ok ? `已补充 ${res.data.created} 条质检任务` : res.data.reason);
  loadTasks();
});

// -- search ----------------------------------------------------------------------------------------
$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const p = new URLSearchParams();
  for (const [key, id] of [["q", "q"], ["agent_id", "s-agent"], ["channel", "s-channel"], ["from", "s-from"], ["to", "s-to"], ["min", "s-min"], ["max", "s-max"]]) {
    if ($(id).value) p.set(key, $(id).value);
  }
  const res = await api("GET", `/api/qa/search?${p}`);
  if (!res.ok) return toast(res.data.reason);
  $("search-rows").replaceChildren(...res.data.items.map((r) => el("tr", {
    class: "clickable", "data-item-id": r.item_id, onclick: () => openItem(r.item_id),
  }, el("td", null, r.day), el("td", null, r.agent_name), el("td", null, channelLabel(r.channel)),
  el("td", null, scoreText(r.score)), el("td", null, STATUS[r.status] || r.status), el("td", { class: "snippet" }, r.snippet))));
  if (!res.data.items.length) $("search-rows").append(el("tr", null, el("td", { colspan: 6, class: "muted" }, "没有找到")));
});

async function loadAgents() {
  const res = await api("GET", "/api/qa/agents");
  if (res.ok) $("s-agent").append(...res.data.items.map((a) => el("option", { value: a.id }, a.display_name)));
}

// -- appeals and content review (supervisors) ------------------------------------------------------
async function loadAppeals() {
  const res = await api("GET", "/api/qa/appeals?status=open");
  if (!res.ok) return toast(res.data.reason);
  $("appeal-rows").replaceChildren(...res.data.items.map((a) => el("tr", {
    class: "clickable", "data-item-id": a.item_id, onclick: () => openItem(a.item_id),
  }, el("td", null, a.agent_name), el("td", null, a.reason), el("td", null, scoreText(a.score)), el("td", null, formatDateTime(a.created_at)))));
  $("appeal-empty").classList.toggle("hidden", res.data.items.length > 0);
}

async function loadFlagged() {
  const res = await api("GET", "/api/qa/content/flagged?days=7");
  if (!res.ok) return toast(res.data.reason);
  $("flag-rows").replaceChildren(...res.data.items.map((m) => el("tr", {
    class: "clickable", onclick: () => openItem(m.item_id),
  }, el("td", null, m.day), el("td", null, channelLabel(m.channel)), el("td", null, m.words.join("、")), el("td", null, m.text))));
}

// -- one item: transcript, sheet, comments, submit; the 复核 decision ------------------------------
async function openItem(id) {
  const res = await api("GET", `/api/qa/items/${id}`);
  if (!res.ok) return toast(res.data.reason);
  state.item = res.data;
  renderItem();
}

function renderItem() {
  const item = state.item;
  const comments = {};
  const box = $("item");
  const transcriptHolder = el("div");
  const drawTranscript = () => {
    const shown = Object.fromEntries(Object.entries(comments).map(([k, v]) => [k, [v]]));
    for (const i of item.inspections) for (const c of i.comments) (shown[c.message_id] ||= []).push(c.text);
    transcriptHolder.replaceChildren(renderTranscript(item, { onComment: canInspect ? addComment : null, comments: shown }));
  };
  const canInspect = !["appealed", "final"].includes(item.status);
  function addComment(line) {
    const text = prompt(`对这条消息的评语：\n${line.text.slice(0, 60)}`, comments[line.id] || "");
    if (text === null) return;
    if (text.trim()) comments[line.id] = text.trim(); else delete comments[line.id];
    drawTranscript();
  }
  drawTranscript();
  const parts = [
    el("h2", { class: "panel-title" }, `质检记录 #${item.id}`,
      el("span", { class: `score ${item.passed ? "pass" : "fail"}`, "data-testid": "qa-item-score" }, ` ${scoreText(item.score)} 分`)),
    itemSummary(item),
  ];
  const side = el("div", { class: "qa-side" });
  if (canInspect) {
    const last = item.inspections.filter((i) => i.kind === "inspection").pop();
    const form = sheetForm(item.sheet, last ? last.scores : item.auto_scores);
    const note = el("textarea", { rows: 2, placeholder: "质检说明（可选）", "data-testid": "qa-note" });
    const submit = el("button", { class: "btn btn-primary", type: "button", "data-testid": "qa-submit" }, "提交质检");
    submit.addEventListener("click", async () => {
      const body = {
        scores: form.values(), note: note.value,
        comments: Object.entries(comments).map(([id, text]) => ({ message_id: Number(id), text })),
      };
      const res = await api("POST", `/api/qa/items/${item.id}/inspection`, body);
      if (!res.ok) return toast(res.data.reason);
      toast(`已提交：${scoreText(res.data.total)} 分，${res.data.passed ? "合格" : "不合格"}`);
      await openItem(item.id);
      loadTasks();
    });
    side.append(el("h3", null, `评分表：${item.sheet.name}（v${item.sheet.version}）`), form.node, note, submit);
  }
  if (item.appeal && item.appeal.status === "open" && isSupervisor()) {
    const latest = item.inspections[item.inspections.length - 1];
    const form = sheetForm(item.sheet, latest.scores);
    const note = el("textarea", { rows: 2, placeholder: "复核说明", "data-testid": "qa-decision-note" });
    const decide = async (decision) => {
      const res = await api("POST", `/api/qa/appeals/${item.appeal.id}/decision`, { decision, scores: form.values(), note: note.value });
      if (!res.ok) return toast(res.data.reason);
      toast(`复核完成：最终得分 ${scoreText(res.data.final_score)}`);
      await openItem(item.id);
      loadAppeals();
    };
    side.append(el("h3", null, "复核"), el("p", null, `坐席理由：${item.appeal.reason}`), form.node, note,
      el("div", { class: "toolbar" },
        el("button", { class: "btn", type: "button", "data-testid": "qa-uphold", onclick: () => decide("uphold") }, "维持原评分"),
        el("button", { class: "btn btn-primary", type: "button", "data-testid": "qa-change", onclick: () => decide("change") }, "按上表改分")));
  }
  side.append(renderInspections(item));
  box.replaceChildren(...parts, el("div", { class: "qa-item-body" }, transcriptHolder, side));
}

// -- rules (versioned) -------------------------------------------------------------------------------
const PARAMS = {
  words: [["words", "词表（每行一个）", "list"], ["who", "对象", "who"], ["complaint", "计为投诉", "bool"]],
  required_phrase: [["phrases", "话术（每行一个，含任一即可）", "list"], ["where", "位置", "where"]],
  regex: [["pattern", "正则表达式", "text"], ["who", "对象", "who"]],
  first_response: [["max_seconds", "上限（秒）", "number"]], gap: [["max_seconds", "上限（秒）", "number"]],
  transfers: [["max", "最多转接次数", "number"]], low_csat: [["max_score", "满意度不高于", "number"]],
  ticket_promised: [["phrases", "承诺工单的说法（每行一个）", "list"]],
  silence: [["max_seconds", "静默上限（秒）", "number"]], talk_over: [["min_seconds", "抢话重叠（秒）", "number"]],
};

function field(rule, [key, label, type]) {
  let input;
  if (type === "list") {
    input = el("textarea", { rows: Math.min(6, (rule[key] || []).length + 1), "data-field": key });
    input.value = (rule[key] || []).join("\n");
    input.addEventListener("change", () => { rule[key] = input.value.split("\n").map((s) => s.trim()).filter(Boolean); });
  } else if (type === "bool") {
    input = el("input", { type: "checkbox", checked: !!rule[key], "data-field": key });
    input.addEventListener("change", () => { rule[key] = input.checked; });
  } else if (type === "who" || type === "where") {
    const opts = type === "who" ? [["agent", "坐席"], ["citizen", "市民"]] : [["first_agent_reply", "首次回复"], ["last_agent_reply", "最后回复"]];
    input = el("select", { "data-field": key }, ...opts.map(([v, t]) => el("option", { value: v, selected: rule[key] === v }, t)));
    input.addEventListener("change", () => { rule[key] = input.value; });
  } else {
    input = el("input", { type: type === "number" ? "number" : "text", value: rule[key] ?? "", "data-field": key });
    input.addEventListener("change", () => { rule[key] = type === "number" ? Number(input.value) : input.value; });
  }
  return el("label", { class: "rule-field" }, label, input);
}

function renderRules() {
  $("rules").replaceChildren(...state.rules.map((rule) => {
    const name = el("input", { value: rule.name, "data-field": "name" });
    name.addEventListener("change", () => { rule.name = name.value; });
    const deduct = el("input", { type: "number", class: "short", value: rule.deduct, "data-field": "deduct" });
    deduct.addEventListener("change", () => { rule.deduct = Number(deduct.value); });
    const on = el("input", { type: "checkbox", checked: rule.enabled !== false });
    on.addEventListener("change", () => { rule.enabled = on.checked; });
    return el("fieldset", { class: "rule", "data-rule-id": rule.id, "data-testid": `rule-${rule.id}` },
      el("legend", null, `${state.kinds[rule.kind] || rule.kind} · ${rule.id}`),
      el("label", { class: "rule-field" }, "名称", name), el("label", { class: "rule-field" }, "扣分", deduct),
      el("label", { class: "rule-field" }, "启用", on), ...(PARAMS[rule.kind] || []).map((p) => field(rule, p)),
      el("button", { class: "btn btn-sm btn-danger sup-only" + (isSupervisor() ? "" : " hidden"), type: "button",
        onclick: () => { state.rules = state.rules.filter((r) => r !== rule); renderRules(); } }, "删除"));
  }));
}

async function loadRules() {
  const res = await api("GET", "/api/qa/rules");
  if (!res.ok) return toast(res.data.reason);
  state.kinds = res.data.kinds;
  state.rules = res.data.current.rules;
  $("rules-version").textContent = `当前版本 v${res.data.current.version}`;
  $("new-kind").replaceChildren(...Object.entries(state.kinds).map(([k, v]) => el("option", { value: k }, v)));
  $("rules-history").replaceChildren(...res.data.history.map((h) => el("li", null,
    `v${h.version} · ${formatDateTime(h.created_at)} · ${h.created_by} · ${h.rules} 条${h.note ? " · " + h.note : ""}`)));
  renderRules();
}

$("add-rule").addEventListener("click", () => {
  const kind = $("new-kind").value;
  const defaults = { words: { words: [], who: "agent" }, required_phrase: { phrases: [], where: "first_agent_reply" },
    regex: { pattern: "", who: "agent" }, first_response: { max_seconds: 60 }, gap: { max_seconds: 120 }, transfers: { max: 2 },
    low_csat: { max_score: 2 }, ticket_promised: { phrases: [] }, silence: { max_seconds: 15 }, talk_over: { min_seconds: 1.5 } };
  state.rules.push({ id: `${kind}_${Date.now().toString(36)}`, name: state.kinds[kind], kind, enabled: true, deduct: 5, ...defaults[kind] });
  renderRules();
});

$("save-rules").addEventListener("click", async () => {
  const res = await api("PUT", "/api/qa/rules", { rules: state.rules, note: $("rules-note").value });
  if (!res.ok) return toast(res.data.reason);
  toast(`已保存为规则 v${res.data.version}`);
  $("rules-note").value = "";
  loadRules();
});

// -- score sheet (versioned) -----------------------------------------------------------------------
function renderSheet() {
  const s = state.sheet;
  $("sheet-name").value = s.name;
  $("sheet-pass").value = s.pass_mark;
  $("sheet-rows").replaceChildren(...s.items.map((item) => {
    const cell = (key, attrs = {}) => {
      const input = el("input", { value: Array.isArray(item[key]) ? item[key].join(",") : item[key], ...attrs });
      input.addEventListener("change", () => {
        item[key] = key === "weight" ? Number(input.value) : key === "rules" ? input.value.split(/[,，\s]+/).filter(Boolean) : input.value;
      });
      return el("td", null, input);
    };
    const kind = el("select", null, el("option", { value: "auto", selected: item.kind === "auto" }, "自动"),
      el("option", { value: "manual", selected: item.kind === "manual" }, "人工"));
    kind.addEventListener("change", () => { item.kind = kind.value; });
    return el("tr", null, cell("key", { class: "short" }), cell("name"), cell("weight", { type: "number", class: "short" }),
      el("td", null, kind), cell("rules"),
      el("td", null, el("button", { class: "btn btn-sm btn-danger", type: "button",
        onclick: () => { s.items = s.items.filter((i) => i !== item); renderSheet(); } }, "删除")));
  }));
}

async function loadSheet() {
  const res = await api("GET", "/api/qa/sheets");
  if (!res.ok) return toast(res.data.reason);
  state.sheet = res.data.current;
  $("sheet-version").textContent = `当前版本 v${state.sheet.version}`;
  $("sheet-history").replaceChildren(...res.data.history.map((h) => el("li", null,
    `v${h.version} · ${h.name} · 及格 ${scoreText(h.pass_mark)} · ${formatDateTime(h.created_at)} · ${h.created_by}`)));
  renderSheet();
}

$("add-sheet-item").addEventListener("click", () => {
  state.sheet.items.push({ key: `item${state.sheet.items.length + 1}`, name: "新评分项", weight: 10, kind: "manual", rules: [] });
  renderSheet();
});
$("save-sheet").addEventListener("click", async () => {
  const s = state.sheet;
  const res = await api("PUT", "/api/qa/sheets", { name: $("sheet-name").value, pass_mark: Number($("sheet-pass").value), items: s.items });
  if (!res.ok) return toast(res.data.reason);
  toast(`已保存为评分表 v${res.data.version}`);
  loadSheet();
});

// -- start -----------------------------------------------------------------------------------------
state.me = await initStaffHeader("/qa");
if (isSupervisor()) {
  for (const node of document.querySelectorAll(".sup-only")) node.classList.remove("hidden");
  $("nav-supervisor").classList.remove("hidden");
}
loadAgents();
loadTasks();
const wanted = new URLSearchParams(location.search).get("item");
if (wanted) openItem(Number(wanted));
