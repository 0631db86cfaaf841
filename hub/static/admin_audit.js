// 操作日志: search the audit log by user, action, dates and text; export what matches as Excel.
import { el, formatDateTime, initStaffHeader } from "/static/common.js";

const form = document.getElementById("audit-filters");
const rows = document.getElementById("audit-rows");
const count = document.getElementById("audit-count");
const errorBox = document.getElementById("audit-error");
const exportLink = document.getElementById("audit-export");
const actionSelect = document.getElementById("f-action");
const PAGE = 100;
let offset = 0;
let total = 0;

function filters() {
  const params = new URLSearchParams();
  for (const [key, id] of [["actor", "f-actor"], ["action", "f-action"], ["since", "f-since"], ["until", "f-until"], ["q", "f-q"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) params.set(key, value);
  }
  return params;
}

// What the detail's codes mean on screen (other values are shown as they are).
const REASONS = { bad_password: "密码错误", disabled: "账号已停用", locked: "账号已锁定", ip_throttled: "该 IP 失败次数过多" };
const KEYS = { reason: "原因", count: "次数", failures: "失败次数", username: "用户名", display_name: "姓名", role: "角色",
  skill_groups: "技能组", active: "启用", conversation: "会话", filters: "筛选条件" };

function detailText(detail) {
  return Object.entries(detail || {}).map(([k, v]) => {
    const value = k === "reason" ? REASONS[v] || v : typeof v === "object" ? JSON.stringify(v) : v;
    return `${KEYS[k] || k}：${value}`;
  }).join("；");
}

async function load() {
  const params = filters();
  exportLink.href = `/api/admin/audit/export?${params}`;
  params.set("offset", String(offset));
  const resp = await fetch(`/api/admin/audit?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    errorBox.textContent = data.reason || `查询失败（${resp.status}）`;
    errorBox.classList.remove("hidden");
    return;
  }
  errorBox.classList.add("hidden");
  if (actionSelect.options.length === 1) {
    for (const a of data.actions) actionSelect.append(el("option", { value: a.code }, a.name));
  }
  total = data.total;
  count.textContent = `共 ${total} 条`;
  rows.replaceChildren(...data.items.map((r) => el("tr", { "data-action": r.action },
    el("td", {}, formatDateTime(r.at)),
    el("td", {}, r.actor || "系统"),
    el("td", {}, r.action_name),
    el("td", {}, r.target),
    el("td", {}, r.ip),
    el("td", { class: "audit-detail" }, detailText(r.detail)))));
  if (!data.items.length) rows.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "没有符合条件的记录")));
  document.getElementById("audit-page").textContent = total ? `第 ${offset + 1}-${offset + data.items.length} 条` : "";
  document.getElementById("audit-prev").disabled = offset === 0;
  document.getElementById("audit-next").disabled = offset + PAGE >= total;
}

form.addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
document.getElementById("audit-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
document.getElementById("audit-next").addEventListener("click", () => { offset += PAGE; load(); });

await initStaffHeader("/admin/audit");
await load();
