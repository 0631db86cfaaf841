// The editor's shared state and helpers: statuses and limits, the page's elements, toasts, the JSON API, branch lookups, dates.
import { el, toMillis } from "/static/common.js";

export const STATUS = {
  draft: ["草稿", "tag tag-gray"],
  published: ["已发布", "tag tag-green"],
  archived: ["已归档", "tag tag-orange"],
};
export const PAGE_SIZE = 200;
export const MAX_ANSWER = 5000;

export const $ = (id) => document.getElementById(id);

export const state = {
  branches: [],          // [{id, name, parent_id, path, entry_count}]
  branchId: null,        // selected branch (null: all)
  items: [],
  total: 0,
  offset: 0,
  selected: new Set(),   // entry ids checked
  seq: 0,
  entry: null,           // entry open in the editor (null: new)
  dirty: false,
  resolveQuestions: null, // questions of a 未解决问题 group the new entry answers
};

/* ------------------------------------------------------------------ helpers */

let toastTimer = null;
export function toast(text) {
  const node = $("toast");
  node.textContent = text;
  node.classList.remove("hidden");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.add("hidden"), 4000);
}

class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; this.reason = reason; }
}

export async function api(method, path, body, { form = null } = {}) {
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (form) opts.body = form;
  else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (_) {
    throw new ApiError(0, "网络连接失败，请稍后重试");
  }
  if (resp.status === 401) {
    location.href = "/login?next=/kb";
    throw new ApiError(401, "请先登录。");
  }
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON */ }
  if (!resp.ok) throw new ApiError(resp.status, (data && data.reason) || `操作失败（${resp.status}），请稍后重试`);
  return data;
}

export function showError(node, text) {
  node.textContent = text || "";
  node.classList.toggle("hidden", !text);
}

export function branchById(id) { return state.branches.find((b) => b.id === id) || null; }

export function branchOptions(select, { all = null, none = null, exclude = null } = {}) {
  const keep = select.value;
  select.textContent = "";
  if (all !== null) select.append(el("option", { value: "" }, all));
  if (none !== null) select.append(el("option", { value: "" }, none));
  const excluded = new Set();
  if (exclude !== null) {
    const root = branchById(exclude);
    for (const b of state.branches) if (root && (b.id === root.id || b.path.startsWith(`${root.path}/`))) excluded.add(b.id);
  }
  for (const b of state.branches) {
    if (excluded.has(b.id)) continue;
    select.append(el("option", { value: String(b.id) }, b.path));
  }
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

/** ISO (UTC) → value for <input type="datetime-local"> in the browser's time. */
export function toLocalInput(iso) {
  const t = toMillis(iso);
  if (Number.isNaN(t)) return "";
  const d = new Date(t);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
export function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}
