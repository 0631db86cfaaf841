// 我的质检 (/qa/mine): an agent's own QA results, the transcript with rule hits and the
// inspector's comments, and 申请复核 with a reason within the configured days.
import { el, channelLabel, formatDateTime, initStaffHeader, showToast } from "/static/common.js";
import { api, APPEAL, STATUS, itemSummary, renderInspections, renderTranscript, scoreText } from "/static/qa_common.js";

const $ = (id) => document.getElementById(id);
const toast = (text) => showToast($("toast"), text);

async function loadMine() {
  const res = await api("GET", "/api/qa/mine");
  if (!res.ok) return toast(res.data.reason);
  $("mine-hint").textContent = `（人工质检后 ${res.data.appeal_days} 天内可申请复核）`;
  $("mine-rows").replaceChildren(...res.data.items.map((m) => el("tr", {
    class: "clickable", "data-item-id": m.item_id, onclick: () => openItem(m.item_id),
  }, el("td", null, m.day), el("td", null, channelLabel(m.channel)), el("td", null, scoreText(m.auto_score)),
  el("td", { class: m.passed ? "pass" : "fail", "data-testid": "mine-score" }, scoreText(m.score)),
  el("td", { "data-testid": "mine-status" }, STATUS[m.status] || m.status),
  el("td", null, m.appeal_status ? APPEAL[m.appeal_status] : ""))));
  $("mine-empty").classList.toggle("hidden", res.data.items.length > 0);
}

async function openItem(id) {
  const res = await api("GET", `/api/qa/items/${id}`);
  if (!res.ok) return toast(res.data.reason);
  const item = res.data;
  const shown = {};
  for (const i of item.inspections) for (const c of i.comments) (shown[c.message_id] ||= []).push(c.text);
  const side = el("div", { class: "qa-side" }, renderInspections(item));
  if (item.can_appeal) {
    const reason = el("textarea", { rows: 3, placeholder: "复核理由（5-500 字）", "data-testid": "appeal-reason" });
    const send = el("button", { class: "btn btn-primary", type: "button", "data-testid": "appeal-submit" }, "申请复核");
    send.addEventListener("click", async () => {
      const r = await api("POST", `/api/qa/items/${id}/appeal`, { reason: reason.value });
      if (!r.ok) return toast(r.data.reason);
      toast("已提交复核申请");
      await loadMine();
      openItem(id);
    });
    side.append(el("h3", null, "申请复核"), el("p", { class: "muted" }, `截止 ${formatDateTime(item.appeal_until)}`), reason, send);
  }
  $("item").replaceChildren(
    el("h2", { class: "panel-title" }, `质检记录 #${item.id}`,
      el("span", { class: `score ${item.passed ? "pass" : "fail"}`, "data-testid": "qa-item-score" }, ` ${scoreText(item.score)} 分`)),
    itemSummary(item),
    el("div", { class: "qa-item-body" }, renderTranscript(item, { comments: shown }), side));
}

await initStaffHeader("/qa/mine");
loadMine();
