// The entry editor: the form, saving, publishing, archiving and deleting an entry.
import { confirmDialog, promptDialog } from "/static/kb/dialogs.js";
import { load, loadEditors } from "/static/kb/entries.js";
import { renderPreview } from "/static/kb/preview.js";
import { $, MAX_ANSWER, STATUS, api, fromLocalInput, showError, state, toLocalInput, toast } from "/static/kb/state.js";
import { loadBranches } from "/static/kb/tree.js";
import { loadVersions } from "/static/kb/versions.js";

/* ------------------------------------------------------------------ entry editor */

function formValues() {
  return {
    branch_id: $("f-branch").value ? Number($("f-branch").value) : null,
    question: $("f-question").value.trim(),
    similar: $("f-similar").value.split("\n").map((s) => s.trim()).filter(Boolean),
    answer: $("f-answer").value,
    short_answer: $("f-short").value.trim(),
    keywords: $("f-keywords").value,
    valid_from: fromLocalInput($("f-valid-from").value),
    valid_to: fromLocalInput($("f-valid-to").value),
  };
}

export function fillForm(entry, preset = {}) {
  const e = entry || {};
  $("f-branch").value = e.branch_id ? String(e.branch_id) : (preset.branch_id ? String(preset.branch_id) : "");
  $("f-question").value = e.question || preset.question || "";
  $("f-similar").value = (e.similar || preset.similar || []).join("\n");
  $("f-answer").value = e.answer || "";
  $("f-short").value = e.short_answer || "";
  $("f-keywords").value = (e.keywords || []).join("，");
  $("f-valid-from").value = toLocalInput(e.valid_from);
  $("f-valid-to").value = toLocalInput(e.valid_to);
  updateCount();
  const rendered = $("f-answer-rendered");
  if (entry) {
    rendered.innerHTML = entry.answer; // sanitised by the server (allow-listed tags, attributes and URLs only)
    rendered.classList.remove("hidden");
  } else {
    rendered.textContent = "";
    rendered.classList.add("hidden");
  }
  const [label, cls] = entry ? STATUS[entry.status] : ["未保存", "tag tag-gray"];
  const status = $("f-status");
  status.textContent = label;
  status.className = cls;
  status.dataset.status = entry ? entry.status : "";
  $("f-version").textContent = entry ? `版本 ${entry.version}` : "";
  $("editor-title").textContent = entry ? "编辑知识条目" : "新建知识条目";
  $("entry-publish").disabled = !!entry && entry.status === "published";
  $("entry-draft").disabled = !entry || entry.status === "draft";
  $("entry-archive").disabled = !entry || entry.status === "archived";
  $("entry-delete").disabled = !entry;
  state.dirty = false;
}

function updateCount() {
  const n = $("f-answer").value.length;
  const node = $("f-answer-count");
  node.textContent = `${n}/${MAX_ANSWER}`;
  node.style.color = n > MAX_ANSWER ? "var(--red)" : "";
}

export async function openEditor(id, preset = {}) {
  showError($("entry-error"), "");
  $("entry-preview-panel").classList.add("hidden");
  $("entry-preview-result").textContent = "";
  state.resolveQuestions = preset.resolve || null;
  if (id) {
    try {
      state.entry = await api("GET", `/api/kb/entries/${encodeURIComponent(id)}`);
    } catch (e) {
      toast(e.reason);
      return;
    }
  } else {
    state.entry = null;
  }
  fillForm(state.entry, { branch_id: state.branchId, ...preset });
  $("entry-editor").classList.remove("hidden");
  $("f-question").focus();
  if (state.entry) loadVersions(); else $("history").classList.add("hidden");
}

export async function closeEditor() {
  if (state.dirty && !(await confirmDialog("有未保存的修改，确定关闭吗？", "关闭"))) return;
  $("entry-editor").classList.add("hidden");
  state.entry = null;
  state.dirty = false;
}

$("entry-close").addEventListener("click", closeEditor);
$("entry-new").addEventListener("click", () => openEditor(null));
$("entry-form").addEventListener("input", () => { state.dirty = true; });
$("f-answer").addEventListener("input", updateCount);

function insertAround(before, after, placeholder) {
  const area = $("f-answer");
  const { selectionStart: s, selectionEnd: e, value } = area;
  const inner = value.slice(s, e) || placeholder;
  area.value = value.slice(0, s) + before + inner + after + value.slice(e);
  area.focus();
  area.selectionStart = s + before.length;
  area.selectionEnd = s + before.length + inner.length;
  state.dirty = true;
  updateCount();
}
$("f-insert-link").addEventListener("click", async () => {
  const got = await promptDialog({ title: "插入链接", label: "链接地址（https://…）", value: "https://" });
  if (got && got.text) insertAround(`<a href="${got.text.replace(/"/g, "&quot;")}">`, "</a>", "链接文字");
});
$("f-insert-image").addEventListener("click", async () => {
  const got = await promptDialog({ title: "插入图片", label: "图片地址（https://…）", value: "https://" });
  if (got && got.text) insertAround(`<img src="${got.text.replace(/"/g, "&quot;")}" alt="`, '">', "图片说明");
});

/** Save the form; returns the saved entry or null (the error is shown). */
async function save() {
  showError($("entry-error"), "");
  const values = formValues();
  try {
    let saved;
    if (state.entry) {
      saved = await api("PUT", `/api/kb/entries/${encodeURIComponent(state.entry.id)}`, { ...values, version: state.entry.version });
    } else {
      if (state.resolveQuestions) values.resolve_questions = state.resolveQuestions;
      saved = await api("POST", "/api/kb/entries", values);
      state.resolveQuestions = null;
    }
    state.entry = saved;
    fillForm(saved);
    loadVersions();
    load();
    loadBranches();
    loadEditors();
    return saved;
  } catch (e) {
    showError($("entry-error"), e.reason);
    return null;
  }
}

$("entry-save").addEventListener("click", async () => {
  if (await save()) toast("已保存");
});

for (const [id, status, label] of [["entry-publish", "published", "发布"], ["entry-draft", "draft", "转草稿"],
  ["entry-archive", "archived", "归档"]]) {
  $(id).addEventListener("click", async () => {
    if ((state.dirty || !state.entry) && !(await save())) return;
    try {
      const entry = await api("POST", `/api/kb/entries/${encodeURIComponent(state.entry.id)}/status`, { status });
      state.entry = entry;
      fillForm(entry);
      loadVersions();
      load();
      toast(`已${label}`);
    } catch (e) {
      showError($("entry-error"), e.reason);
    }
  });
}

$("entry-delete").addEventListener("click", async () => {
  if (!state.entry) return;
  if (!(await confirmDialog(`确定删除知识条目“${state.entry.question}”吗？`, "删除", true))) return;
  try {
    await api("DELETE", `/api/kb/entries/${encodeURIComponent(state.entry.id)}`);
    state.selected.delete(state.entry.id);
    state.dirty = false;
    $("entry-editor").classList.add("hidden");
    toast("知识条目已删除");
    load();
    loadBranches();
  } catch (e) {
    showError($("entry-error"), e.reason);
  }
});

$("entry-preview").addEventListener("click", async () => {
  showError($("entry-error"), "");
  const panel = $("entry-preview-panel");
  const box = $("entry-preview-result");
  panel.classList.remove("hidden");
  box.textContent = "正在用最近 30 天的市民提问重放，请稍候…";
  const body = { entry: formValues(), days: 30 };
  if (state.entry) body.entry_id = state.entry.id;
  try {
    renderPreview(box, await api("POST", "/api/kb/preview", body));
  } catch (e) {
    box.textContent = "";
    showError($("entry-error"), e.reason);
  }
  panel.scrollIntoView({ behavior: "smooth", block: "start" });
});
