// In-page confirm and prompt dialogs (never window.confirm), and Esc closing them.
import { el } from "/static/common.js";
import { closeEditor } from "/static/kb/editor.js";
import { $, showError } from "/static/kb/state.js";

/* ------------------------------------------------------------------ dialogs (in-page, never window.confirm) */

export function confirmDialog(text, okLabel = "确定", danger = false) {
  return new Promise((resolve) => {
    const modal = $("confirm-modal");
    $("confirm-text").textContent = text;
    const ok = $("confirm-ok");
    ok.textContent = okLabel;
    ok.className = danger ? "btn btn-danger" : "btn btn-primary";
    modal.classList.remove("hidden");
    const done = (value) => {
      modal.classList.add("hidden");
      ok.removeEventListener("click", yes);
      $("confirm-cancel").removeEventListener("click", no);
      resolve(value);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener("click", yes);
    $("confirm-cancel").addEventListener("click", no);
    ok.focus();
  });
}

/** A small form dialog: text input and/or a select. Resolves {text, select} or null; `submit` may throw to keep it open. */
export function promptDialog({ title, label = "", value = "", selectLabel = null, options = null, selectValue = "", submit }) {
  return new Promise((resolve) => {
    const modal = $("prompt-modal");
    $("prompt-title").textContent = title;
    $("prompt-label").textContent = label;
    const input = $("prompt-input");
    input.value = value;
    input.parentElement.classList.toggle("hidden", !label);
    const wrap = $("prompt-select-wrap");
    const select = $("prompt-select");
    wrap.classList.toggle("hidden", !options);
    if (options) {
      $("prompt-select-label").textContent = selectLabel || "";
      select.textContent = "";
      for (const [v, text] of options) select.append(el("option", { value: v }, text));
      select.value = selectValue;
    }
    const error = $("prompt-error");
    showError(error, "");
    modal.classList.remove("hidden");
    (label ? input : select).focus();
    const close = (result) => {
      modal.classList.add("hidden");
      $("prompt-ok").removeEventListener("click", ok);
      $("prompt-cancel").removeEventListener("click", cancel);
      input.removeEventListener("keydown", enter);
      resolve(result);
    };
    const ok = async () => {
      const result = { text: input.value.trim(), select: select.value };
      try {
        if (submit) await submit(result);
        close(result);
      } catch (e) {
        showError(error, e.reason || e.message);
      }
    };
    const cancel = () => close(null);
    const enter = (ev) => { if (ev.key === "Enter" && !ev.isComposing) ok(); };
    $("prompt-ok").addEventListener("click", ok);
    $("prompt-cancel").addEventListener("click", cancel);
    input.addEventListener("keydown", enter);
  });
}

document.addEventListener("keydown", (ev) => {
  if (ev.key !== "Escape") return;
  for (const id of ["confirm-cancel", "prompt-cancel", "attach-cancel"]) {
    const button = $(id);
    if (!button.closest(".modal").classList.contains("hidden")) { button.click(); return; }
  }
  if (!$("entry-editor").classList.contains("hidden")) closeEditor();
});
