// 报表 (/qa/reports): QA (average score, pass rate, rule hits) and service figures (volume by channel
// and hour, bot containment, handoff reasons, waits, response and handle times, CSAT), per day, week
// or month and per agent or group, as ECharts charts (vendored) and a table; Excel export.
import { el, initStaffHeader, showToast } from "/static/common.js";
import { api, seconds, scoreText } from "/static/qa_common.js";

const $ = (id) => document.getElementById(id);
const echarts = window.echarts;
const state = { kind: "qa", charts: [] };
const REASONS = { button: "点击转人工", keyword: "关键词", anger: "市民不满", fallback: "机器人未能解答", kb_entry: "知识条目要求",
  bot_unavailable: "机器人不可用", flagged_citizen: "重点关注市民", intent: "意图", unknown: "未知" };

// empty dates: the server's last 30 days in the bureau's time zone (filled in from its answer)
function params() {
  const p = new URLSearchParams({ period: $("r-period").value, by: $("r-by").value });
  if ($("r-from").value) p.set("from", $("r-from").value);
  if ($("r-to").value) p.set("to", $("r-to").value);
  return p;
}

function chart(title, option, testid) {
  const box = el("div", { class: "chart", "data-testid": testid });
  $("charts").append(box);
  const c = echarts.init(box, null, { renderer: "canvas" });
  c.setOption({ title: { text: title, left: 8, top: 6, textStyle: { fontSize: 14 } }, tooltip: { trigger: "axis" },
    grid: { left: 48, right: 24, top: 48, bottom: 36 }, animation: false, ...option });
  state.charts.push(c);
}

function table(columns, rows) {
  $("report-table").replaceChildren(
    el("thead", null, el("tr", null, ...columns.map(([, label]) => el("th", null, label)))),
    el("tbody", null, ...rows.map((r) => el("tr", null, ...columns.map(([key, , fmt]) => el("td", null, fmt ? fmt(r[key]) : (r[key] ?? "—")))))));
}

const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);

function seriesBy(rows, value) {
  const buckets = [...new Set(rows.map((r) => r.bucket))].sort();
  const names = [...new Set(rows.map((r) => r.name))];
  return { buckets, series: names.map((name) => ({ name, type: "line", data: buckets.map((b) => {
    const r = rows.find((x) => x.bucket === b && x.name === name);
    return r ? value(r) : null;
  }) })) };
}

function drawQa(data) {
  const rows = data.rows;
  const score = seriesBy(rows, (r) => r.avg_score);
  chart("平均分", { legend: { top: 6, right: 8 }, xAxis: { type: "category", data: score.buckets }, yAxis: { type: "value", min: 0, max: 100 },
    series: score.series }, "chart-avg");
  const rate = seriesBy(rows, (r) => (r.pass_rate === null ? null : +(r.pass_rate * 100).toFixed(1)));
  chart("合格率（%）", { legend: { top: 6, right: 8 }, xAxis: { type: "category", data: rate.buckets }, yAxis: { type: "value", min: 0, max: 100 },
    series: rate.series }, "chart-pass");
  const hits = {};
  for (const r of rows) hits[r.name] = (hits[r.name] || 0) + r.hits;
  chart("规则命中", { xAxis: { type: "category", data: Object.keys(hits) }, yAxis: { type: "value" },
    series: [{ type: "bar", data: Object.values(hits), itemStyle: { color: "#d4380d" } }] }, "chart-hits");
  table([["bucket", "周期"], ["name", "坐席/技能组"], ["items", "质检条数"], ["avg_score", "平均分", scoreText],
    ["pass_rate", "合格率", pct], ["hits", "规则命中"], ["inspected", "人工质检"]], rows);
}

function drawService(data) {
  chart("各渠道会话量", { tooltip: { trigger: "item" }, series: [{ type: "pie", radius: ["35%", "65%"], top: 24,
    data: Object.entries(data.by_channel).map(([name, value]) => ({ name: { web: "网页", wechat: "微信", telegram: "Telegram", voice: "电话" }[name] || name, value })) }] }, "chart-channel");
  chart("各时段会话量", { xAxis: { type: "category", data: [...Array(24).keys()].map((h) => `${h}时`) }, yAxis: { type: "value" },
    series: [{ type: "bar", data: data.by_hour }] }, "chart-hour");
  const c = data.containment;
  chart("机器人独立解决率与转人工率（%）", { legend: { top: 6, right: 8 }, xAxis: { type: "category", data: c.map((x) => x.bucket) },
    yAxis: { type: "value", min: 0, max: 100 }, series: [
      { name: "独立解决率", type: "line", data: c.map((x) => (x.containment_rate === null ? null : +(x.containment_rate * 100).toFixed(1))) },
      { name: "转人工率", type: "line", data: c.map((x) => (x.handoff_rate === null ? null : +(x.handoff_rate * 100).toFixed(1))) }] }, "chart-containment");
  chart("转人工原因", { tooltip: { trigger: "item" }, series: [{ type: "pie", radius: "60%", top: 24,
    data: Object.entries(data.handoff_reasons).map(([k, v]) => ({ name: REASONS[k] || k, value: v })) }] }, "chart-reasons");
  table([["bucket", "周期"], ["name", "坐席/技能组"], ["closed", "结束会话"], ["handed_off", "转人工"],
    ["avg_wait_seconds", "平均排队", seconds], ["abandoned", "排队放弃"], ["avg_first_response_seconds", "平均首次响应", seconds],
    ["avg_handle_seconds", "平均处理时长", seconds], ["avg_csat", "平均满意度", scoreText], ["csat_count", "评价数"]], data.served);
}

async function load() {
  for (const c of state.charts) c.dispose();
  state.charts = [];
  $("charts").replaceChildren();
  $("export").href = `/api/qa/reports/${state.kind}?${params()}&format=xlsx`;
  const res = await api("GET", `/api/qa/reports/${state.kind}?${params()}`);
  if (!res.ok) return showToast($("toast"), res.data.reason);
  $("r-from").value = res.data.from;
  $("r-to").value = res.data.to;
  $("export").href = `/api/qa/reports/${state.kind}?${params()}&format=xlsx`;
  (state.kind === "qa" ? drawQa : drawService)(res.data);
  document.body.dataset.loaded = state.kind;
}

for (const tab of document.querySelectorAll(".qa-tabs .tab")) {
  tab.addEventListener("click", () => {
    state.kind = tab.dataset.kind;
    for (const t of document.querySelectorAll(".qa-tabs .tab")) t.classList.toggle("active", t === tab);
    load();
  });
}
$("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
window.addEventListener("resize", () => state.charts.forEach((c) => c.resize()));
await initStaffHeader("/qa/reports");
load();
