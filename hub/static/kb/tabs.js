// The page's tabs: 知识条目, 未解决问题, 发布预览, 导入导出.
import { updateExportLink } from "/static/kb/import_export.js";
import { loadDrafts } from "/static/kb/preview.js";
import { $ } from "/static/kb/state.js";
import { loadUnanswered } from "/static/kb/unanswered.js";

/* ------------------------------------------------------------------ tabs */

export function showTab(name) {
  for (const tab of document.querySelectorAll(".kb-tab")) {
    const on = tab.dataset.tab === name;
    tab.classList.toggle("active", on);
    tab.setAttribute("aria-selected", on ? "true" : "false");
  }
  for (const panel of ["entries", "unanswered", "preview", "transfer"]) {
    $(`panel-${panel}`).classList.toggle("hidden", panel !== name);
  }
  if (name === "unanswered") loadUnanswered();
  if (name === "preview") loadDrafts();
  if (name === "transfer") updateExportLink();
  history.replaceState(null, "", name === "entries" ? "/kb" : `/kb#${name}`);
}
for (const tab of document.querySelectorAll(".kb-tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
