// The console's 客户信息 panel (弹屏): the profile with an edit form (the hub's Chinese reasons
// shown under each field), 合并客户 (search another profile, confirm), the citizen's open 工单
// (overdue ones in red, a new-ticket form) and earlier conversations.
// agent.js calls window.crmPanel.render(panelNode, conversation) from its screen-pop function.
import { el, formatDateTime, channelLabel } from "/static/common.js";
import { api, formatDue, TICKET_STATUS, isoFromLocalInput } from "/static/crm_common.js";

const FIELDS = [
  // [field, label, input type, placeholder]
  ["name", "姓名", "text", "市民姓名"],
  ["phone", "电话", "tel", "手机号或带区号的固定电话"],
  ["id_number", "身份证号", "text", "18 位身份证号"],
  ["address", "地址", "text", "联系地址"],
  ["tags", "标签", "text", "多个标签用逗号分隔"],
];
const MASKABLE = new Set(["phone", "id_number"]);

// per conversation: {editing, merging, ticketing} survives the console's frequent re-renders
const panels = new Map();
let rendered = { convId: null, screenPop: null, node: null };

function panelState(convId) {
  if (!panels.has(convId)) panels.set(convId, { editing: null, merging: false, ticketing: false, message: "" });
  return panels.get(convId);
}

function unknown(text = "未知") {
  return el("span", { class: "unknown", text });
}

function shown(v) {
  if (v === null || v === undefined || (typeof v === "string" && v.trim() === "")) return unknown();
  return String(v);
}

function render(pop, conv, force = false) {
  const sp = conv.screenPop || {};
  // the console re-renders on every message: keep the panel (and a half-filled form) as it is
  if (!force && rendered.convId === conv.id && rendered.screenPop === sp && rendered.node && pop.contains(rendered.node)) {
    return;
  }
  const st = panelState(conv.id);
  const c = sp.citizen || {};
  if (!c.name && st.editing === null) st.editing = true; // an unknown citizen: the empty profile to fill in
  pop.textContent = "";
  const root = el("div", { class: "crm-panel", "data-citizen-id": c.id ?? "" });
  pop.append(el("h2", { class: "panel-title" }, "客户信息"), root);
  rendered = { convId: conv.id, screenPop: sp, node: root };
  const rerender = () => render(pop, conv, true);

  root.append(profileSection(c, st, rerender));
  if (st.editing) root.append(profileForm(conv, c, st, rerender));
  if (st.merging) root.append(mergeSection(conv, c, st, rerender));
  root.append(ticketSection(conv, c, sp, st, rerender));
  root.append(historySection(sp));
}

function profileSection(c, st, rerender) {
  const tags = Array.isArray(c.tags) ? c.tags.filter(Boolean) : [];
  const dl = el("dl", { class: "pop-fields" });
  const rows = [
    ["姓名", shown(c.name), "pop-name"],
    ["电话", shown(c.phone), "pop-phone"],
    ["身份证号", shown(c.id_number), "pop-id-number"],
    ["地址", shown(c.address), "pop-address"],
    ["渠道", shown(c.channel ? channelLabel(c.channel) : null), "pop-channel"],
    ["访客编号", shown(c.visitor_id), "pop-visitor"],
    ["客户编号", shown(c.id), "pop-id"],
  ];
  for (const [label, value, testid] of rows) {
    dl.append(el("dt", null, label), el("dd", { "data-testid": testid }, value));
  }
  const badges = [];
  if (c.vip) badges.push(el("span", { class: "tag tag-orange", text: "VIP" }));
  if (c.flagged) badges.push(el("span", { class: "tag crm-flag", text: "重点关注" }));
  for (const tg of tags) badges.push(el("span", { class: "tag", text: String(tg) }));
  dl.append(el("dt", null, "标签"), el("dd", { "data-testid": "pop-tags" },
    badges.length ? el("span", { class: "pop-tags" }, ...badges) : unknown("暂无")));
  if (c.notes) dl.append(el("dt", null, "备注"), el("dd", { class: "crm-notes", "data-testid": "pop-notes", text: c.notes }));
  const bar = el("div", { class: "crm-bar" },
    el("button", {
      class: "btn btn-sm", type: "button", "data-testid": "crm-edit", disabled: st.editing ? true : null,
      onclick: () => { st.editing = true; st.message = ""; rerender(); },
    }, c.name ? "编辑资料" : "填写资料"),
    el("button", {
      class: "btn btn-sm", type: "button", "data-testid": "crm-merge",
      onclick: () => { st.merging = !st.merging; rerender(); },
    }, "合并客户"));
  const section = el("section", { class: "pop-section" }, dl, bar);
  if (st.message) section.append(el("p", { class: "crm-ok", role: "status", "data-testid": "crm-message", text: st.message }));
  return section;
}

function profileForm(conv, c, st, rerender) {
  const form = el("form", { class: "crm-form", "data-testid": "crm-form", novalidate: true });
  const masked = !!c.masked;
  const inputs = {};
  const errors = {};
  form.append(el("h3", null, c.name ? "编辑客户资料" : "新客户：请补充客户资料"));
  for (const [field, label, type, placeholder] of FIELDS) {
    const id = `crm-${field.replace("_", "-")}`;
    let value = "";
    let hint = placeholder;
    if (field === "tags") value = (c.tags || []).join("，");
    else if (MASKABLE.has(field) && masked) hint = c[field] ? `${c[field]}（不修改请留空）` : placeholder;
    else value = c[field] || "";
    const input = el("input", {
      id, class: "field", type, value, placeholder: hint, "data-testid": id, autocomplete: "off",
      maxlength: field === "address" ? 200 : 64,
    });
    inputs[field] = input;
    errors[field] = el("p", { class: "crm-error hidden", role: "alert", "data-testid": `crm-error-${field}` });
    form.append(el("label", { class: "crm-label", for: id }, label), input, errors[field]);
  }
  const notes = el("textarea", { id: "crm-notes", class: "field", rows: 3, maxlength: 2000, "data-testid": "crm-notes" });
  notes.value = c.notes || "";
  inputs.notes = notes;
  errors.notes = el("p", { class: "crm-error hidden", role: "alert", "data-testid": "crm-error-notes" });
  form.append(el("label", { class: "crm-label", for: "crm-notes" }, "备注"), notes, errors.notes);
  const vip = el("input", { type: "checkbox", id: "crm-vip", "data-testid": "crm-vip", checked: c.vip ? true : null });
  const flagged = el("input", { type: "checkbox", id: "crm-flagged", "data-testid": "crm-flagged", checked: c.flagged ? true : null });
  form.append(el("div", { class: "crm-checks" },
    el("label", { for: "crm-vip" }, vip, " VIP"),
    el("label", { for: "crm-flagged" }, flagged, " 重点关注")));
  const general = el("p", { class: "crm-error hidden", role: "alert", "data-testid": "crm-error" });
  const save = el("button", { class: "btn btn-primary btn-sm", type: "submit", "data-testid": "crm-save" }, "保存");
  const cancel = el("button", {
    class: "btn btn-sm", type: "button", "data-testid": "crm-cancel",
    onclick: () => { st.editing = false; rerender(); },
  }, "取消");
  form.append(general, el("div", { class: "crm-bar" }, cancel, save));

  const showErrors = (map, reason) => {
    for (const [field, node] of Object.entries(errors)) {
      const text = map && map[field];
      node.textContent = text || "";
      node.classList.toggle("hidden", !text);
      if (inputs[field]) inputs[field].setAttribute("aria-invalid", text ? "true" : "false");
    }
    const unplaced = map ? Object.keys(map).filter((f) => !errors[f]) : [];
    const text = unplaced.length ? map[unplaced[0]] : (map ? "" : reason || "");
    general.textContent = text;
    general.classList.toggle("hidden", !text);
    const first = map && FIELDS.map(([f]) => f).concat(["notes"]).find((f) => map[f] && inputs[f]);
    if (first) inputs[first].focus(); // brings the first refused field into view
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const [field] of FIELDS) {
      const raw = inputs[field].value.trim();
      if (field === "tags") {
        const tags = raw.split(/[,，、;；]/).map((t) => t.trim()).filter(Boolean);
        if (tags.join("，") !== (c.tags || []).join("，")) body.tags = tags;
      } else if (MASKABLE.has(field) && masked) {
        if (raw) body[field] = raw;
      } else if (raw !== (c[field] || "")) {
        body[field] = raw;
      }
    }
    if (notes.value !== (c.notes || "")) body.notes = notes.value;
    if (vip.checked !== !!c.vip) body.vip = vip.checked;
    if (flagged.checked !== !!c.flagged) body.flagged = flagged.checked;
    if (!Object.keys(body).length) { st.editing = false; st.message = "没有修改"; rerender(); return; }
    save.disabled = true;
    const res = await api("PATCH", `/api/crm/citizens/${c.id}`, body);
    save.disabled = false;
    if (!res.ok) {
      showErrors(res.data.errors || (res.data.field ? { [res.data.field]: res.data.reason } : null), res.data.reason);
      return;
    }
    Object.assign(c, res.data.citizen || {});
    // the console shows the new name on the conversation's tab and header (agent/conversations.js)
    document.dispatchEvent(new CustomEvent("crm:citizen-saved", { detail: c }));
    st.editing = false;
    st.message = "客户资料已保存";
    rerender();
  });
  return form;
}

function mergeSection(conv, c, st, rerender) {
  const box = el("section", { class: "pop-section crm-merge", "data-testid": "crm-merge-box" });
  box.append(el("h3", null, "合并客户"),
    el("p", { class: "muted", text: "查找与当前客户为同一人的另一份档案，合并后其会话、工单和评价都归入当前客户。" }));
  const q = el("input", { class: "field", type: "search", placeholder: "姓名、电话、身份证号或客户编号", "data-testid": "crm-merge-q" });
  const go = el("button", { class: "btn btn-sm", type: "submit", "data-testid": "crm-merge-search" }, "搜索");
  const results = el("ul", { class: "pop-list", "data-testid": "crm-merge-results" });
  const note = el("p", { class: "crm-error hidden", role: "alert", "data-testid": "crm-merge-error" });
  const form = el("form", { class: "crm-search" }, q, go);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    results.textContent = "";
    note.classList.add("hidden");
    if (!q.value.trim()) return;
    const res = await api("GET", `/api/crm/citizens?q=${encodeURIComponent(q.value.trim())}`);
    if (!res.ok) { note.textContent = res.data.reason; note.classList.remove("hidden"); return; }
    const others = (res.data.items || []).filter((x) => x.id !== c.id);
    if (!others.length) results.append(el("li", { class: "muted", text: "没有找到其他客户" }));
    for (const other of others) {
      results.append(el("li", { class: "crm-result", "data-citizen-id": other.id },
        el("div", { class: "pl-head" }, el("span", { text: `#${other.id}` }), el("span", { text: other.name || "（未填姓名）" })),
        el("div", { class: "pl-body", text: [other.phone, other.id_number].filter(Boolean).join(" · ") || "无电话、证件" }),
        el("button", {
          class: "btn btn-sm", type: "button", "data-testid": "crm-merge-pick",
          onclick: () => confirmMerge(box, c, other, st, rerender),
        }, "选择")));
    }
  });
  box.append(form, note, results,
    el("button", { class: "btn btn-sm", type: "button", onclick: () => { st.merging = false; rerender(); } }, "关闭"));
  return box;
}

function confirmMerge(box, c, other, st, rerender) {
  box.querySelector(".crm-confirm")?.remove();
  const reason = el("input", { class: "field", type: "text", maxlength: 200, placeholder: "合并原因（例如：电话核实为同一人）", "data-testid": "crm-merge-reason" });
  const error = el("p", { class: "crm-error hidden", role: "alert" });
  const ok = el("button", { class: "btn btn-danger btn-sm", type: "button", "data-testid": "crm-merge-confirm" }, "确认合并");
  const confirm = el("div", { class: "crm-confirm", role: "alertdialog", "data-testid": "crm-merge-confirm-box" },
    el("p", null, `将客户 #${other.id}（${other.name || "未填姓名"}）合并到当前客户 #${c.id}（${c.name || "未填姓名"}）？`),
    el("p", { class: "muted", text: "合并后对方的会话、工单、评价和渠道身份都归入当前客户，对方档案停用，历史记录全部保留。" }),
    reason, error,
    el("div", { class: "crm-bar" },
      el("button", { class: "btn btn-sm", type: "button", onclick: () => confirm.remove() }, "取消"), ok));
  ok.addEventListener("click", async () => {
    ok.disabled = true;
    const res = await api("POST", "/api/crm/merges", { keep_id: c.id, merge_id: other.id, reason: reason.value });
    ok.disabled = false;
    if (!res.ok) { error.textContent = res.data.reason; error.classList.remove("hidden"); return; }
    st.merging = false;
    st.message = res.status === 202 ? (res.data.message || "已提交合并申请，班长确认后生效。") : `已合并客户 #${other.id}`;
    if (res.status === 200) await refresh(c);
    rerender();
  });
  box.append(confirm);
  reason.focus();
}

async function refresh(c) {
  const res = await api("GET", `/api/crm/citizens/${c.id}`);
  if (res.ok && res.data.citizen) {
    Object.assign(c, res.data.citizen);
    c.openTickets = res.data.open_tickets;
  }
}

function ticketSection(conv, c, sp, st, rerender) {
  const tickets = Array.isArray(c.openTickets) ? c.openTickets : (Array.isArray(sp.open_tickets) ? sp.open_tickets : []);
  const list = el("ul", { class: "pop-list", "data-testid": "pop-tickets" });
  for (const tk of tickets) {
    list.append(el("li", { class: tk.overdue ? "crm-ticket overdue" : "crm-ticket", "data-ticket-id": tk.id },
      el("div", { class: "pl-head" },
        el("a", { href: `/tickets#${tk.id}`, target: "_blank", rel: "noopener", text: `#${tk.id}` }),
        el("span", { class: "tag tag-orange", text: TICKET_STATUS[tk.status] || tk.status }),
        el("span", { class: tk.overdue ? "due late" : "due", text: formatDue(tk.seconds_to_deadline) })),
      el("div", { class: "pl-body", text: tk.title })));
  }
  const section = el("section", { class: "pop-section" },
    el("h3", null, `未完结工单（${tickets.length}）`),
    tickets.length ? list : el("p", { class: "muted", text: "暂无工单" }));
  if (st.ticketing) {
    section.append(ticketForm(conv, c, st, rerender));
  } else {
    section.append(el("button", {
      class: "btn btn-sm", type: "button", "data-testid": "crm-new-ticket",
      onclick: () => { st.ticketing = true; rerender(); },
    }, "新建工单"));
  }
  return section;
}

function ticketForm(conv, c, st, rerender) {
  const title = el("input", { class: "field", type: "text", maxlength: 200, placeholder: "工单标题", "data-testid": "crm-ticket-title" });
  const body = el("textarea", { class: "field", rows: 3, maxlength: 5000, placeholder: "诉求内容", "data-testid": "crm-ticket-body" });
  const due = el("input", { class: "field", type: "datetime-local", "data-testid": "crm-ticket-due", "aria-label": "处理期限" });
  const mine = el("input", { type: "checkbox", id: "crm-ticket-mine", checked: true });
  const error = el("p", { class: "crm-error hidden", role: "alert", "data-testid": "crm-ticket-error" });
  const form = el("form", { class: "crm-form", "data-testid": "crm-ticket-form", novalidate: true },
    el("label", { class: "crm-label" }, "标题"), title,
    el("label", { class: "crm-label" }, "内容"), body,
    el("label", { class: "crm-label" }, "处理期限（留空：默认时限）"), due,
    el("label", { class: "crm-check", for: "crm-ticket-mine" }, mine, " 由我处理"),
    error,
    el("div", { class: "crm-bar" },
      el("button", { class: "btn btn-sm", type: "button", onclick: () => { st.ticketing = false; rerender(); } }, "取消"),
      el("button", { class: "btn btn-primary btn-sm", type: "submit", "data-testid": "crm-ticket-save" }, "创建工单")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const payload = { citizen_id: c.id, title: title.value, body: body.value, conversation_id: conv.id };
    if (conv.group) payload.group = conv.group;
    if (due.value) payload.due_at = isoFromLocalInput(due.value);
    if (mine.checked) {
      const me = await api("GET", "/api/crm/staff");
      if (me.ok) payload.assignee_id = me.data.me;
    }
    const res = await api("POST", "/api/crm/tickets", payload);
    if (!res.ok) { error.textContent = res.data.reason; error.classList.remove("hidden"); return; }
    st.ticketing = false;
    st.message = `已创建工单 #${res.data.id}`;
    await refresh(c);
    rerender();
  });
  return form;
}

function historySection(sp) {
  const prev = Array.isArray(sp.previous_conversations) ? sp.previous_conversations : [];
  const list = el("ul", { class: "pop-list", "data-testid": "pop-history" });
  for (const p of prev) {
    list.append(el("li", null,
      el("div", { class: "pl-head" },
        el("span", { text: formatDateTime(p.started_at) || "时间未知" }),
        el("span", { class: "tag tag-gray", text: channelLabel(p.channel) })),
      el("div", { class: "pl-body", text: p.summary || "（无摘要）" })));
  }
  return el("section", { class: "pop-section" },
    el("h3", null, `历史会话（${prev.length}）`),
    prev.length ? list : el("p", { class: "muted", text: "暂无历史会话" }));
}

window.crmPanel = { render };
