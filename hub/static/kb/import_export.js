// 导入导出: importing a spreadsheet with a row-numbered report, and the export link.
import { el } from "/static/common.js";
import { load, loadEditors } from "/static/kb/entries.js";
import { $, api, state } from "/static/kb/state.js";
import { loadBranches } from "/static/kb/tree.js";

/* ------------------------------------------------------------------ import / export */

$("import-file").addEventListener("change", () => { $("import-start").disabled = !$("import-file").files.length; });

function importStatus(text, cls = "") {
  const node = $("import-status");
  node.textContent = text;
  node.className = `import-status ${cls}`;
}

function showImportErrors(errors) {
  const table = $("import-errors");
  const rows = $("import-error-rows");
  rows.textContent = "";
  for (const e of errors) {
    rows.append(el("tr", { "data-testid": "import-error-row", dataset: { row: String(e.row) } },
      el("td", { class: "num", text: String(e.row) }), el("td", { text: e.reason })));
  }
  table.classList.toggle("hidden", errors.length === 0);
}

$("import-start").addEventListener("click", async () => {
  const file = $("import-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  if ($("import-create-branches").checked) form.append("create_branches", "1");
  const bar = $("import-progress");
  bar.value = 0;
  bar.classList.remove("hidden");
  showImportErrors([]);
  importStatus("正在上传…");
  $("import-start").disabled = true;
  try {
    const job = await api("POST", "/api/kb/imports", undefined, { form });
    await pollImport(job.id);
  } catch (e) {
    bar.classList.add("hidden");
    importStatus(e.reason, "error");
  } finally {
    $("import-start").disabled = !$("import-file").files.length;
  }
});

async function pollImport(id) {
  const bar = $("import-progress");
  for (;;) {
    const job = await api("GET", `/api/kb/imports/${encodeURIComponent(id)}`);
    const total = job.total || 1;
    if (job.state === "done") {
      bar.value = 100;
      const r = job.report;
      importStatus(`导入成功：新增 ${r.created} 个知识条目（其中已发布 ${r.published} 个）`
        + (r.created_branches.length ? `，新建知识分类：${r.created_branches.join("、")}` : "") + "。", "ok");
      state.offset = 0;
      loadBranches();
      load();
      loadEditors();
      return;
    }
    if (job.state === "failed") {
      bar.classList.add("hidden");
      const r = job.report || {};
      const errors = r.errors || [];
      importStatus(errors.length ? `导入失败：有 ${errors.length} 行存在错误，没有导入任何内容。请修改后重新导入。`
        : (r.reason || "导入失败，没有导入任何内容。"), "error");
      showImportErrors(errors);
      return;
    }
    const pct = job.stage === "writing" ? 10 + Math.round((90 * job.done) / total) : 5;
    bar.value = pct;
    importStatus(job.stage === "writing" ? `正在导入… ${job.done} / ${job.total}` : `正在检查 ${job.total} 行…`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

export function updateExportLink() {
  const params = new URLSearchParams({ format: $("export-format").value });
  if ($("export-branch").value) params.set("branch_id", $("export-branch").value);
  if ($("export-status").value) params.set("status", $("export-status").value);
  $("export-go").href = `/api/kb/export?${params}`;
}
for (const id of ["export-branch", "export-status", "export-format"]) $(id).addEventListener("change", updateExportLink);
