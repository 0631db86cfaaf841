// KB editor (知识库): branch tree, entry table with bulk actions, entry editor with versions,
// 未解决问题, 发布预览, import/export. Speaks the JSON API of hub/routes/kb.py.
// This entry module starts the page; each section lives in /static/kb/.
import { initStaffHeader } from "/static/common.js";
import { load, loadEditors } from "/static/kb/entries.js";
import { updateExportLink } from "/static/kb/import_export.js";
import { pollRetrain } from "/static/kb/retrain.js";
import { showTab } from "/static/kb/tabs.js";
import { loadBranches } from "/static/kb/tree.js";

/* ------------------------------------------------------------------ start */

initStaffHeader("/kb");
loadBranches().then(() => {
  load();
  updateExportLink();
});
loadEditors();
pollRetrain();
const initial = location.hash.replace("#", "");
if (["unanswered", "preview", "transfer"].includes(initial)) showTab(initial);
