// An entry's version history and rolling back to a version.
import { el, formatDateTime } from "/static/common.js";
import { confirmDialog } from "/static/kb/dialogs.js";
import { fillForm } from "/static/kb/editor.js";
import { load } from "/static/kb/entries.js";
import { $, STATUS, api, showError, state, toast } from "/static/kb/state.js";

/* ------------------------------------------------------------------ versions */

export async function loadVersions() {
  if (!state.entry) return;
  const list = $("version-list");
  try {
    const data = await api("GET", `/api/kb/entries/${encodeURIComponent(state.entry.id)}/versions`);
    list.textContent = "";
    for (const v of data.items) {
      const diff = el("ul", { class: "v-diff", "data-testid": "version-diff" });
      for (const d of v.diff) diff.append(el("li", { text: d.text || d.label }));
      if (v.note) diff.append(el("li", { class: "muted", text: v.note }));
      const current = v.number === state.entry.version;
      list.append(el("li", { class: "version-item", "data-testid": "version-item", dataset: { version: String(v.number) } },
        el("div", { class: "v-head" },
          el("b", { text: `版本 ${v.number}` }),
          el("span", { class: "tag", text: v.action_label }),
          v.snapshot && STATUS[v.snapshot.status]
            ? el("span", { class: STATUS[v.snapshot.status][1], "data-testid": "version-status", text: STATUS[v.snapshot.status][0] }) : null,
          el("span", { text: v.editor || "—" }),
          el("span", { class: "muted", text: formatDateTime(v.created_at) }),
          el("span", { class: "spacer" }),
          current ? el("span", { class: "muted", text: "当前版本" }) : el("button", {
            class: "btn btn-sm version-rollback", type: "button", "data-testid": "version-rollback",
            onclick: () => rollback(v.number, v.snapshot ? v.snapshot.status : null),
          }, "回滚到此版本")),
        diff));
    }
    $("history").classList.remove("hidden");
  } catch (e) {
    list.textContent = "";
    list.append(el("li", { class: "muted", text: e.reason }));
  }
}

/** What rolling back to a version does to the entry's status, said before it is done. */
function rollbackPlan(number, wasStatus) {
  const now = state.entry.status;
  const republish = wasStatus === "published" && now !== "published";
  const nowLabel = (STATUS[now] || [now])[0];
  const text = republish
    ? `回滚到版本 ${number}（已发布）：内容恢复为该版本，并重新发布，机器人会立即按这个版本回答。回滚会生成一个新版本。`
    : now === "published"
      ? `回滚到版本 ${number}：内容恢复为该版本，条目保持“已发布”，机器人会立即按回滚后的内容回答。回滚会生成一个新版本。`
      : `回滚到版本 ${number}：内容恢复为该版本，条目保持“${nowLabel}”（机器人不会用它回答，发布后才生效）。回滚会生成一个新版本。`;
  return { republish, text, ok: republish ? "回滚并发布" : "回滚" };
}

async function rollback(number, wasStatus) {
  if (!state.entry) return;
  const plan = rollbackPlan(number, wasStatus);
  if (!(await confirmDialog(plan.text, plan.ok))) return;
  try {
    const id = encodeURIComponent(state.entry.id);
    let entry = await api("POST", `/api/kb/entries/${id}/rollback`, { version: number });
    if (plan.republish) entry = await api("POST", `/api/kb/entries/${id}/status`, { status: "published" });
    state.entry = entry;
    fillForm(entry);
    loadVersions();
    load();
    toast(plan.republish ? `已回滚到版本 ${number} 并重新发布` : `已回滚到版本 ${number}`);
  } catch (e) {
    showError($("entry-error"), e.reason);
  }
}
