// 未解决问题: grouped questions the bot could not answer; answer, attach to an entry, or ignore.
import { el, formatDateTime } from "/static/common.js";
import { confirmDialog } from "/static/kb/dialogs.js";
import { openEditor } from "/static/kb/editor.js";
import { $, STATUS, api, showError, toast } from "/static/kb/state.js";
import { showTab } from "/static/kb/tabs.js";

/* ------------------------------------------------------------------ 未解决问题 */

export async function loadUnanswered() {
  const list = $("ua-list");
  list.textContent = "";
  list.append(el("li", { class: "muted", text: "加载中…" }));
  try {
    const data = await api("GET", `/api/kb/unanswered?days=${$("ua-days").value}`);
    list.textContent = "";
    $("ua-total").textContent = `共 ${data.total} 组`;
    if (data.items.length === 0) list.append(el("li", { class: "muted", "data-testid": "ua-empty", text: "暂无未解决问题" }));
    for (const g of data.items) list.append(groupItem(g));
  } catch (e) {
    list.textContent = "";
    list.append(el("li", { class: "form-error", text: e.reason }));
  }
}

function groupItem(g) {
  const texts = g.questions.map((q) => q.text);
  const details = el("details", null, el("summary", null, `${g.questions.length} 种问法`),
    el("ul", null, ...g.questions.map((q) => el("li", { text: `${q.text}（${q.count} 次）` }))));
  return el("li", { class: "ua-group", "data-testid": "ua-group", dataset: { key: g.key } },
    el("div", { class: "ua-head" },
      el("span", { class: "ua-q", "data-testid": "ua-question", text: g.question }),
      el("span", { class: "ua-count", "data-testid": "ua-count", title: "提问次数", text: String(g.count) }),
      ...g.reasons.map((r) => el("span", { class: "tag tag-gray", text: `${r.label} ${r.count}` })),
      el("span", { class: "muted", text: formatDateTime(g.last_at) }),
      el("span", { class: "ua-actions" },
        el("button", { class: "btn btn-sm", type: "button", "data-testid": "ua-attach",
          onclick: () => openAttach(g.question, texts) }, "添加为相似问法"),
        el("button", { class: "btn btn-sm", type: "button", "data-testid": "ua-new",
          onclick: () => { showTab("entries"); openEditor(null, { question: g.question, similar: texts.filter((t) => t !== g.question), resolve: texts }); } },
        "新建知识条目"),
        el("button", { class: "btn btn-sm", type: "button", "data-testid": "ua-ignore",
          onclick: () => ignoreGroup(texts) }, "忽略"))),
    details);
}

async function ignoreGroup(texts) {
  if (!(await confirmDialog(`确定忽略这 ${texts.length} 种问法吗？它们会从列表中移除（再次出现时会重新列出）。`, "忽略"))) return;
  try {
    await api("POST", "/api/kb/unanswered/resolve", { questions: texts });
    toast("已忽略");
    loadUnanswered();
  } catch (e) {
    toast(e.reason);
  }
}

let attachTexts = [];
async function openAttach(question, texts) {
  attachTexts = texts;
  const modal = $("attach-modal");
  const chips = $("attach-questions");
  chips.textContent = "";
  for (const t of texts) chips.append(el("li", { text: t }));
  const list = $("attach-suggestions");
  list.textContent = "";
  list.append(el("li", { class: "muted", text: "正在查找相近的知识条目…" }));
  showError($("attach-error"), "");
  $("attach-ok").disabled = true;
  modal.classList.remove("hidden");
  try {
    const data = await api("POST", "/api/kb/unanswered/suggest", { question });
    list.textContent = "";
    if (data.items.length === 0) list.append(el("li", { class: "muted", text: "没有相近的知识条目，请新建知识条目。" }));
    for (const s of data.items) {
      list.append(el("li", { "data-testid": "attach-suggestion" }, el("label", null,
        el("input", { type: "radio", name: "attach-entry", value: s.entry_id, onchange: () => { $("attach-ok").disabled = false; } }),
        el("span", { text: s.question }),
        el("span", { class: "muted", text: `${s.branch} · ${(STATUS[s.status] || [s.status])[0]} · 相似度 ${Math.round(s.score * 100)}%` }))));
    }
  } catch (e) {
    list.textContent = "";
    showError($("attach-error"), e.reason);
  }
}
$("attach-cancel").addEventListener("click", () => $("attach-modal").classList.add("hidden"));
$("attach-ok").addEventListener("click", async () => {
  const chosen = document.querySelector('input[name="attach-entry"]:checked');
  if (!chosen) return;
  try {
    const entry = await api("POST", "/api/kb/unanswered/attach", { entry_id: chosen.value, questions: attachTexts });
    $("attach-modal").classList.add("hidden");
    toast(`已添加到“${entry.question}”的相似问法`);
    loadUnanswered();
  } catch (e) {
    showError($("attach-error"), e.reason);
  }
});
$("ua-refresh").addEventListener("click", loadUnanswered);
$("ua-days").addEventListener("change", loadUnanswered);
