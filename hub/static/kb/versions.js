// An entry's version history and rolling back to a version.
import { el, formatDateTime } from "/static/common.js";
import { confirmDialog } from "/static/kb/dialogs.js";
import { fillForm } from "/static/kb/editor.js";
import { load } from "/static/kb/entries.js";
import { $, api, showError, state, toast } from "/static/kb/state.js";

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
          el("span", { text: v.editor || "—" }),
          el("span", { class: "muted", text: formatDateTime(v.created_at) }),
          el("span", { class: "spacer" }),
          current ? el("span", { class: "muted", text: "当前版本" }) : el("button", {
            class: "btn btn-sm version-rollback", type: "button", "data-testid": "version-rollback",
            onclick: () => rollback(v.number),
          }, "回滚到此版本")),
        diff));
    }
    $("history").classList.remove("hidden");
  } catch (e) {
    list.textContent = "";
    list.append(el("li", { class: "muted", text: e.reason }));
  }
}

async function rollback(number) {
  if (!state.entry) return;
  if (!(await confirmDialog(`确定把该知识条目的内容回滚到版本 ${number} 吗？回滚会生成一个新版本。`, "回滚"))) return;
  try {
    const entry = await api("POST", `/api/kb/entries/${encodeURIComponent(state.entry.id)}/rollback`, { version: number });
    state.entry = entry;
    fillForm(entry);
    loadVersions();
    load();
    toast(`已回滚到版本 ${number}`);
  } catch (e) {
    showError($("entry-error"), e.reason);
  }
}
