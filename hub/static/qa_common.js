// Shared by the QA pages (/qa, /qa/mine, /qa/reports): API calls, labels, and one transcript
// renderer with rule hits highlighted (text is set as text, never parsed as HTML).
import { el, formatDateTime, channelLabel } from "/static/common.js";

export async function api(method, url, body) {
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, opts);
  } catch (_) {
    return { ok: false, status: 0, data: { reason: "网络连接失败，请稍后再试。" } };
  }
  let data = {};
  try { data = await resp.json(); } catch (_) { data = { reason: `请求失败（${resp.status}）。` }; }
  return { ok: resp.ok, status: resp.status, data };
}

export const STATUS = { scored: "自动评分", sampled: "待质检", inspected: "已质检", appealed: "复核中", final: "已复核" };
export const APPEAL = { open: "待处理", upheld: "维持原评分", changed: "已改分" };
export const REASON = {
  random: "随机抽样", below_pass: "低于及格分", complaint: "投诉", low_csat: "满意度低", weekly_minimum: "每周保底",
};
export const SENDER = { citizen: "市民", bot: "机器人", agent: "坐席", system: "系统" };

export function seconds(v) {
  if (v === null || v === undefined) return "—";
  const s = Math.round(v);
  return s >= 60 ? `${Math.floor(s / 60)}分${s % 60}秒` : `${s}秒`;
}

export function scoreText(v) { return v === null || v === undefined ? "—" : Number(v).toFixed(1).replace(/\.0$/, ""); }

/** The item's header: who, when, where, the figures. */
export function itemSummary(item) {
  const f = item.figures;
  const pairs = [
    ["坐席", item.agent_name || "—"], ["渠道", channelLabel(item.channel)], ["技能组", item.group || "—"],
    ["结束时间", formatDateTime(item.closed_at)], ["排队", seconds(f.wait_seconds)],
    ["首次响应", seconds(f.first_response_seconds)], ["最长回复间隔", seconds(f.longest_gap_seconds)],
    ["处理时长", seconds(f.handle_seconds)], ["转接", `${f.transfers} 次`],
    ["满意度", item.csat ? `${item.csat} 分` : "未评价"], ["工单", item.ticket_ids.length ? item.ticket_ids.join("、") : "无"],
    ["状态", STATUS[item.status] || item.status], ["评分表", `v${item.sheet.version}`], ["规则", `v${item.ruleset_version}`],
  ];
  return el("dl", { class: "qa-summary", "data-testid": "qa-summary" },
    ...pairs.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, v)]));
}

/** Text with each hit's [start, end) wrapped in <mark>; overlapping hits keep the first. */
function highlighted(text, hits) {
  const spans = hits.filter((h) => Number.isInteger(h.start) && Number.isInteger(h.end))
    .sort((a, b) => a.start - b.start);
  const out = el("span", { class: "qa-text" });
  let at = 0;
  for (const h of spans) {
    if (h.start < at) continue;
    out.append(text.slice(at, h.start));
    out.append(el("mark", { class: "qa-hit", title: `${h.rule_name}（扣 ${h.deduct} 分）`, "data-testid": "qa-hit" },
      text.slice(h.start, h.end)));
    at = h.end;
  }
  out.append(text.slice(at));
  return out;
}

/**
 * The transcript with its hits. `onComment(line)` (optional) adds a 评语 button on each line;
 * `comments` ({message_id: [text]}) are shown under their line.
 */
export function renderTranscript(item, { onComment = null, comments = {} } = {}) {
  const box = el("div", { class: "qa-transcript", "data-testid": "qa-transcript" });
  const loose = item.hits.filter((h) => h.message_id === undefined || h.message_id === null);
  if (loose.length) {
    box.append(el("ul", { class: "qa-loose-hits", "data-testid": "qa-loose-hits" },
      ...loose.map((h) => el("li", null, `${h.rule_name}${h.detail ? "：" + h.detail : ""}${h.second !== undefined ? `（第 ${h.second} 秒）` : ""}（扣 ${h.deduct} 分）`))));
  }
  for (const line of item.lines) {
    const tag = line.note ? "内部备注" : line.whisper ? "悄悄话" : "";
    const row = el("div", {
      class: `qa-line from-${line.sender}${line.hits.length ? " has-hit" : ""}${tag ? " internal" : ""}`,
      "data-message-id": line.id, "data-testid": "qa-line",
    },
    el("div", { class: "qa-line-head" },
      el("span", { class: "who" }, `${SENDER[line.sender] || line.sender}${line.sender_name ? " · " + line.sender_name : ""}`),
      tag ? el("span", { class: "tag" }, tag) : null,
      el("span", { class: "muted" }, formatDateTime(line.created_at)),
      onComment ? el("button", { class: "btn btn-sm link", type: "button", onclick: () => onComment(line) }, "评语") : null),
    highlighted(line.text, line.hits));
    for (const h of line.hits.filter((x) => !Number.isInteger(x.start))) {
      row.append(el("div", { class: "qa-rule-note", "data-testid": "qa-rule-note" },
        `⚠ ${h.rule_name}${h.detail ? "：" + h.detail : ""}（扣 ${h.deduct} 分）`));
    }
    for (const text of comments[line.id] || []) {
      row.append(el("div", { class: "qa-comment", "data-testid": "qa-comment" }, `评语：${text}`));
    }
    box.append(row);
  }
  const rec = item.recording;
  if (rec && rec.segments && rec.segments.length) {
    box.append(el("h4", null, `通话录音文本${rec.seconds ? `（${seconds(rec.seconds)}）` : ""}`));
    for (const s of rec.segments) {
      box.append(el("div", { class: `qa-line from-${s.speaker}` },
        el("div", { class: "qa-line-head" }, el("span", { class: "who" }, `${SENDER[s.speaker] || s.speaker}`),
          el("span", { class: "muted" }, `${s.start}s–${s.end}s`)), s.text));
    }
  }
  return box;
}

/** Every score a person gave (inspection, re-review). */
export function renderInspections(item) {
  const box = el("div", { class: "qa-inspections", "data-testid": "qa-inspections" });
  const names = Object.fromEntries(item.sheet.items.map((i) => [i.key, i.name]));
  for (const i of item.inspections) {
    box.append(el("div", { class: "qa-inspection" },
      el("div", null, el("strong", null, i.kind === "review" ? "复核结果" : "质检结果"),
        ` ${i.inspector_name} · ${formatDateTime(i.created_at)} · 评分表 v${i.sheet_version} · `,
        el("strong", { "data-testid": "qa-inspection-total" }, `${scoreText(i.total)} 分`), i.passed ? "（合格）" : "（不合格）"),
      el("div", { class: "muted" }, Object.entries(i.scores).map(([k, v]) => `${names[k] || k} ${scoreText(v)}`).join("，")),
      i.note ? el("div", null, `说明：${i.note}`) : null));
  }
  if (item.appeal) {
    const a = item.appeal;
    box.append(el("div", { class: "qa-appeal", "data-testid": "qa-appeal" },
      el("strong", null, "复核申请："), a.reason, el("br"),
      `状态：${APPEAL[a.status] || a.status}`,
      a.final_score !== null ? `，最终得分 ${scoreText(a.final_score)}` : "",
      a.decided_by_name ? `（${a.decided_by_name}）` : "", a.decision_note ? `，说明：${a.decision_note}` : ""));
  }
  return box;
}

/** The sheet as a form: one number per item, the total live. Returns {node, values()}. */
export function sheetForm(sheet, start) {
  const inputs = {};
  const total = el("strong", { "data-testid": "qa-sheet-total" });
  const rows = sheet.items.map((i) => {
    const input = el("input", {
      type: "number", min: 0, max: i.weight, step: 0.5, value: start[i.key] ?? i.weight,
      "data-key": i.key, "data-testid": `qa-score-${i.key}`, "aria-label": i.name,
    });
    inputs[i.key] = input;
    input.addEventListener("input", update);
    return el("tr", null, el("td", null, i.name), el("td", null, i.kind === "auto" ? "自动" : "人工"),
      el("td", null, String(i.weight)), el("td", null, input));
  });
  function values() {
    return Object.fromEntries(Object.entries(inputs).map(([k, inp]) => [k, Number(inp.value)]));
  }
  function update() {
    const sum = Object.values(values()).reduce((a, b) => a + b, 0);
    total.textContent = `${scoreText(sum)} 分（及格 ${scoreText(sheet.pass_mark)}）`;
    total.className = sum >= sheet.pass_mark ? "pass" : "fail";
  }
  update();
  const node = el("div", { class: "qa-sheet" },
    el("table", { class: "data-table" },
      el("thead", null, el("tr", null, el("th", null, "评分项"), el("th", null, "方式"), el("th", null, "分值"), el("th", null, "得分"))),
      el("tbody", null, ...rows)),
    el("div", { class: "qa-total" }, "合计：", total));
  return { node, values };
}
