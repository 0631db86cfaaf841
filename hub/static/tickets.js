// 工单 page: the list (filter by status / assignee / overdue; overdue rows red, time to the
// deadline shown), a ticket's detail (status, assignee, group, due time, reply to the citizen),
// and for supervisors: 客户资料 import/export and merge proposals. API: hub/routes/crm.py.
import { el, formatDateTime, initStaffHeader, showToast } from "/static/common.js";
import { api, formatDue, TICKET_STATUS, localInputValue, isoFromLocalInput } from "/static/crm_common.js";
import { callbackPhone, openNewTicket } from "/static/ticket_new.js";

const $ = (id) => document.getElementById(id);
const ui = {
  rows: $("ticket-rows"), empty: $("ticket-empty"), count: $("ticket-count"), detail: $("ticket-detail"),
  status: $("filter-status"), assignee: $("filter-assignee"), overdue: $("filter-overdue"), toast: $("toast"),
};
const state = { me: null, staff: [], groups: [], selected: null, timer: null };
const REFRESH_MS = 30000;

function staffName(id) {
  const s = state.staff.find((x) => x.id === id);
  return s ? s.display_name : (id ? `#${id}` : "");
}

async function loadList() {
  const params = new URLSearchParams({ status: ui.status.value });
  if (ui.assignee.value) params.set("assignee", ui.assignee.value);
  if (ui.overdue.checked) params.set("overdue", "1");
  const res = await api("GET", `/api/crm/tickets?${params}`);
  if (!res.ok) { showToast(ui.toast, res.data.reason); return; }
  ui.rows.textContent = "";
  const items = res.data.items || [];
  ui.count.textContent = `共 ${items.length} 条`;
  ui.empty.classList.toggle("hidden", items.length > 0);
  for (const t of items) {
    const tr = el("tr", {
      class: `ticket-row${t.overdue ? " overdue" : ""}${t.id === state.selected ? " selected" : ""}`,
      "data-ticket-id": t.id, "data-overdue": t.overdue ? "1" : "0", tabindex: 0,
      title: t.overdue_reason || "",
      onclick: () => openTicket(t.id),
      onkeydown: (ev) => { if (ev.key === "Enter") openTicket(t.id); },
    },
    el("td", { class: "t-id", text: `#${t.id}` }),
    el("td", { class: "t-title", text: t.title }),
    el("td", { class: "t-citizen", text: t.citizen_name || `客户 #${t.citizen_id}` }),
    el("td", { class: "t-status" }, el("span", { class: "tag", text: t.status_label || TICKET_STATUS[t.status] })),
    el("td", { text: t.group || "" }),
    el("td", { class: "t-assignee", text: t.assignee_name || "未分配" }),
    el("td", { text: formatDateTime(t.deadline || t.due_at) }),
    el("td", { class: "t-due", "data-testid": "ticket-due", text: t.overdue ? `${formatDue(t.seconds_to_deadline)}（${t.overdue_reason}）` : formatDue(t.seconds_to_deadline) }));
    ui.rows.append(tr);
  }
}

function option(value, label, selected) {
  return el("option", { value, selected: selected ? true : null }, label);
}

async function openTicket(id) {
  state.selected = id;
  for (const tr of ui.rows.querySelectorAll(".ticket-row")) tr.classList.toggle("selected", Number(tr.dataset.ticketId) === id);
  const res = await api("GET", `/api/crm/tickets/${id}`);
  if (!res.ok) { showToast(ui.toast, res.data.reason); return; }
  renderDetail(res.data);
  if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
}

function renderDetail(data) {
  const t = data.ticket;
  const c = data.citizen || {};
  const box = ui.detail;
  box.textContent = "";
  box.dataset.ticketId = t.id;
  const dl = el("dl", null,
    el("dt", null, "工单号"), el("dd", { text: `#${t.id}（${t.source === "message" ? "市民留言" : "坐席创建"}）` }),
    el("dt", null, "标题"), el("dd", { text: t.title }),
    el("dt", null, "内容"), el("dd", { text: t.body }),
    el("dt", null, "客户"), el("dd", { text: `${c.name || "未填姓名"}（#${t.citizen_id}）${c.phone ? ` ${c.phone}` : ""}` },
      c.masked && c.phone ? callbackPhone(t, state.me) : null),
    el("dt", null, "创建时间"), el("dd", { text: formatDateTime(t.created_at) }),
    el("dt", null, "首次响应"), el("dd", { text: t.first_response_at ? formatDateTime(t.first_response_at) : `未响应（时限 ${formatDateTime(t.response_due_at)}）` }),
    el("dt", null, "剩余时间"), el("dd", { class: t.overdue ? "crm-error" : "", "data-testid": "detail-due", text: t.overdue ? `${formatDue(t.seconds_to_deadline)}（${t.overdue_reason}）` : formatDue(t.seconds_to_deadline) }));
  const status = el("select", { class: "field", "data-testid": "detail-status" },
    ...Object.entries(TICKET_STATUS).map(([v, label]) => option(v, label, v === t.status)));
  const assignee = el("select", { class: "field", "data-testid": "detail-assignee" },
    option("", "未分配", !t.assignee_id),
    ...state.staff.map((s) => option(String(s.id), `${s.display_name}（${s.username}）`, s.id === t.assignee_id)));
  const groups = [...new Set([...(state.groups || []), ...(t.group ? [t.group] : [])])];
  const group = el("select", { class: "field", "data-testid": "detail-group" },
    option("", "（无）", !t.group), ...groups.map((g) => option(g, g, g === t.group)));
  const due = el("input", { class: "field", type: "datetime-local", "data-testid": "detail-due-at", value: localInputValue(new Date(t.due_at)) });
  const reply = el("textarea", { class: "field", rows: 3, maxlength: 2000, placeholder: "答复市民的内容（选填）", "data-testid": "detail-reply" });
  const notify = el("input", { type: "checkbox", id: "detail-notify", checked: t.conversation_id ? true : null, disabled: t.conversation_id ? null : true });
  const error = el("p", { class: "crm-error hidden", role: "alert", "data-testid": "detail-error" });
  const save = el("button", { class: "btn btn-primary btn-sm", type: "submit", "data-testid": "detail-save" }, "保存");
  const form = el("form", { class: "ticket-detail", novalidate: true },
    el("label", { class: "crm-label" }, "状态"), status,
    el("label", { class: "crm-label" }, "处理人"), assignee,
    el("label", { class: "crm-label" }, "技能组"), group,
    el("label", { class: "crm-label" }, "处理期限"), due,
    el("label", { class: "crm-label" }, "答复"), reply,
    el("label", { class: "crm-check", for: "detail-notify" }, notify, " 同时发送给市民（原会话渠道）"),
    error, el("div", { class: "crm-bar" }, save));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    if (status.value !== t.status) body.status = status.value;
    const newAssignee = assignee.value ? Number(assignee.value) : null;
    if (newAssignee !== (t.assignee_id ?? null)) body.assignee_id = newAssignee;
    if (group.value !== (t.group || "")) body.group = group.value;
    if (due.value && due.value !== localInputValue(new Date(t.due_at))) body.due_at = isoFromLocalInput(due.value);
    if (reply.value.trim()) { body.reply = reply.value.trim(); body.notify_citizen = notify.checked; }
    if (!Object.keys(body).length) { showToast(ui.toast, "没有修改"); return; }
    save.disabled = true;
    const res = await api("PATCH", `/api/crm/tickets/${t.id}`, body);
    save.disabled = false;
    if (!res.ok) { error.textContent = res.data.reason; error.classList.remove("hidden"); return; }
    showToast(ui.toast, res.data.delivered ? "已保存，答复已发送给市民" : "已保存");
    renderDetail(res.data);
    loadList();
  });
  const events = el("ul", { class: "ticket-events", "data-testid": "detail-events" },
    ...(data.events || []).map((e) => el("li", null,
      el("div", { class: "ev-head", text: `${formatDateTime(e.created_at)} ${e.user || "系统"} · ${eventLabel(e)}` }),
      e.text ? el("div", { text: e.text }) : null)));
  box.append(dl, form, el("h3", null, "处理记录"), events);
}

function eventLabel(e) {
  const d = e.data || {};
  switch (e.kind) {
    case "created": return d.source === "message" ? "市民留言生成工单" : "创建工单";
    case "reply": return "答复";
    case "status": return `状态：${TICKET_STATUS[d.from] || d.from} → ${TICKET_STATUS[d.to] || d.to}`;
    case "assign": return `处理人：${staffName(d.from) || "未分配"} → ${staffName(d.to) || "未分配"}`;
    case "group": return `技能组：${d.from || "无"} → ${d.to || "无"}`;
    case "due": return `处理期限改为 ${formatDateTime(d.to)}`;
    case "merged": return `客户 #${d.from_citizen} 合并到 #${d.to_citizen}`;
    default: return e.kind;
  }
}

/* ------------------------------------------------------------ supervisors: merges, import/export */

async function loadProposals() {
  const res = await api("GET", "/api/crm/merges/proposals");
  const list = $("merge-proposals");
  list.textContent = "";
  if (!res.ok) return;
  const items = res.data.items || [];
  if (!items.length) list.append(el("li", { class: "muted", text: "暂无待确认的合并申请" }));
  for (const p of items) {
    const decide = async (decision) => {
      const r = await api("POST", `/api/crm/merges/proposals/${p.id}/${decision}`);
      showToast(ui.toast, r.ok ? (decision === "accept" ? "已合并" : "已驳回") : r.data.reason);
      loadProposals();
    };
    list.append(el("li", { "data-proposal-id": p.id },
      el("span", { text: `#${p.merge_id} ${p.merge_name || ""} → #${p.keep_id} ${p.keep_name || ""}` }),
      p.reason ? el("span", { class: "muted", text: `（${p.reason}）` }) : null,
      el("button", { class: "btn btn-sm btn-danger", type: "button", onclick: () => decide("accept") }, "确认合并"),
      el("button", { class: "btn btn-sm", type: "button", onclick: () => decide("refuse") }, "驳回")));
  }
}

function initImport() {
  const form = $("import-form");
  const file = $("import-file");
  const bar = $("import-progress");
  const status = $("import-status");
  const errors = $("import-errors");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.textContent = "";
    if (!file.files.length) { status.textContent = "请选择要导入的文件。"; return; }
    const data = new FormData();
    data.append("file", file.files[0]);
    status.textContent = "正在上传…";
    const res = await api("POST", "/api/crm/imports", data);
    if (!res.ok) { status.textContent = res.data.reason; return; }
    bar.classList.remove("hidden");
    bar.value = 0;
    const stages = { queued: "排队中", checking: "正在校验", writing: "正在写入", done: "完成", failed: "失败" };
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const job = await api("GET", `/api/crm/imports/${res.data.id}`);
      if (!job.ok) { status.textContent = job.data.reason; return; }
      const s = job.data;
      bar.value = s.total ? Math.round((100 * (s.done || 0)) / s.total) : 0;
      status.textContent = `${stages[s.stage] || s.stage}：${s.done || 0}/${s.total}`;
      if (s.state === "done") {
        bar.value = 100;
        status.textContent = `导入成功：新增 ${s.report.created} 位客户。`;
        return;
      }
      if (s.state === "failed") {
        const report = s.report || {};
        status.textContent = report.reason || `导入失败：${(report.errors || []).length} 行有错误，未写入任何数据。`;
        for (const e of report.errors || []) errors.append(el("li", { text: `第 ${e.row} 行：${e.reason}` }));
        return;
      }
    }
  });
}

async function init() {
  const me = await initStaffHeader("/tickets");
  if (!me) return;
  const staff = await api("GET", "/api/crm/staff");
  if (staff.ok) {
    state.me = staff.data.me;
    state.staff = staff.data.items || [];
    state.groups = staff.data.groups || [];
    for (const s of state.staff) ui.assignee.append(option(String(s.id), s.display_name, false));
  }
  if (me.role === "supervisor" || me.role === "admin") {
    $("nav-supervisor").classList.remove("hidden");
    $("merge-section").classList.remove("hidden");
    $("transfer-section").classList.remove("hidden");
    initImport();
    loadProposals();
  }
  for (const node of [ui.status, ui.assignee, ui.overdue]) node.addEventListener("change", loadList);
  $("ticket-refresh").addEventListener("click", loadList);
  $("ticket-new").addEventListener("click", () => openNewTicket(ui.detail, state.groups, async (ticket) => {
    showToast(ui.toast, `已创建工单 #${ticket.id}`);
    await loadList();
    openTicket(ticket.id);
  }));
  await loadList();
  const fromHash = Number(location.hash.slice(1));
  if (fromHash) openTicket(fromHash);
  state.timer = setInterval(loadList, REFRESH_MS);
}

init();
