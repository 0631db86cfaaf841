// 发布预览: how the bot would answer recent questions once the drafts are published.
import { el } from "/static/common.js";
import { $, api, toast } from "/static/kb/state.js";

/* ------------------------------------------------------------------ preview */

function hitText(hit) {
  if (!hit) return "（机器人不回答，建议转人工）";
  const name = hit.entry_id === "__draft__" ? "本条目（草稿）" : hit.question;
  return `${name}（置信度 ${Math.round(hit.score * 100)}%）`;
}

export function renderPreview(box, data) {
  box.textContent = "";
  const changed = data.changed || [];
  box.append(el("p", { class: "summary", "data-testid": "preview-summary",
    text: `最近 ${data.days} 天共 ${data.asked} 次提问（${data.questions} 个不同问题），发布后有 ${changed.length} 个问题的回答会变化。`
      + (data.draft_live === false ? "注意：该条目不在生效期内，发布后不会回答。" : "") }));
  if (changed.length === 0) return;
  const body = el("tbody");
  for (const c of changed) {
    body.append(el("tr", { "data-testid": "preview-row" },
      el("td", { text: c.question }),
      el("td", { class: "num", text: String(c.count) }),
      el("td", { text: hitText(c.before) }),
      el("td", { text: c.answer_text_changed ? "本条目的新答案" : hitText(c.after) })));
  }
  box.append(el("table", { class: "data-table", "data-testid": "preview-table" },
    el("thead", null, el("tr", null, el("th", null, "市民提问"), el("th", { class: "num" }, "次数"),
      el("th", null, "现在的回答"), el("th", null, "发布后的回答"))), body));
}

export async function loadDrafts() {
  try {
    const data = await api("GET", "/api/kb/search?status=draft&limit=500");
    const select = $("pv-entry");
    const keep = select.value;
    select.textContent = "";
    if (data.items.length === 0) select.append(el("option", { value: "" }, "（没有草稿）"));
    for (const it of data.items) select.append(el("option", { value: it.id }, `${it.question}（${it.branch_path}）`));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  } catch (e) {
    toast(e.reason);
  }
}

$("pv-run").addEventListener("click", async () => {
  const id = $("pv-entry").value;
  const box = $("pv-result");
  if (!id) { box.textContent = "请先选择一个草稿。"; return; }
  box.textContent = "正在重放市民提问，请稍候…";
  $("pv-run").disabled = true;
  try {
    renderPreview(box, await api("POST", "/api/kb/preview", { entry_id: id, days: Number($("pv-days").value) || 30 }));
  } catch (e) {
    box.textContent = e.reason;
  } finally {
    $("pv-run").disabled = false;
  }
});
