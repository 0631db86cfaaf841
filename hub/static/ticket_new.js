// 新建工单 on /tickets: a case that came in by phone. The caller is found by their number (a new
// profile the first time); 需要回电 (on by default) titles it 请回电：… so that its handler may see
// the number in full. API: POST /api/crm/phone_tickets (hub/routes/phone_tickets.py).
import { el } from "/static/common.js";
import { api, isoFromLocalInput } from "/static/crm_common.js";

/** Open the form in `box`; `created(ticket)` runs once the hub has stored it. */
export function openNewTicket(box, groups, created) {
  box.textContent = "";
  const field = (id, label, input) => [el("label", { class: "crm-label", for: id }, label), input];
  const name = el("input", { id: "nt-name", class: "field", type: "text", maxlength: 64, placeholder: "来电人姓名（选填）", "data-testid": "new-ticket-name" });
  const phone = el("input", { id: "nt-phone", class: "field", type: "tel", maxlength: 32, placeholder: "来电号码", "data-testid": "new-ticket-phone" });
  const title = el("input", { id: "nt-title", class: "field", type: "text", maxlength: 200, placeholder: "如：咨询社保卡补办进度", "data-testid": "new-ticket-title" });
  const body = el("textarea", { id: "nt-body", class: "field", rows: 4, maxlength: 5000, placeholder: "来电人的诉求", "data-testid": "new-ticket-body" });
  const group = el("select", { id: "nt-group", class: "field", "data-testid": "new-ticket-group" },
    el("option", { value: "" }, "（不指定）"), ...groups.map((g) => el("option", { value: g }, `${g}技能组`)));
  const due = el("input", { id: "nt-due", class: "field", type: "datetime-local", "data-testid": "new-ticket-due" });
  const callback = el("input", { type: "checkbox", id: "nt-callback", checked: true, "data-testid": "new-ticket-callback" });
  const mine = el("input", { type: "checkbox", id: "nt-mine", checked: true, "data-testid": "new-ticket-mine" });
  const problem = el("p", { class: "crm-error hidden", role: "alert", "data-testid": "new-ticket-error" });
  const save = el("button", { class: "btn btn-primary btn-sm", type: "submit", "data-testid": "new-ticket-save" }, "创建工单");
  const form = el("form", { class: "ticket-detail crm-form", "data-testid": "new-ticket-form", novalidate: true },
    el("h3", null, "新建工单（来电）"),
    ...field("nt-phone", "来电号码", phone), ...field("nt-name", "姓名", name),
    ...field("nt-title", "标题", title), ...field("nt-body", "内容", body),
    ...field("nt-group", "技能组", group), ...field("nt-due", "处理期限（留空：默认时限）", due),
    el("label", { class: "crm-check", for: "nt-callback" }, callback, " 需要回电（处理人可查看完整号码，查看会被记录）"),
    el("label", { class: "crm-check", for: "nt-mine" }, mine, " 由我处理"),
    problem, el("div", { class: "crm-bar" }, save));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const payload = {
      phone: phone.value.trim(), name: name.value.trim(), title: title.value.trim(), body: body.value.trim(),
      group: group.value, callback: callback.checked, mine: mine.checked,
    };
    if (due.value) payload.due_at = isoFromLocalInput(due.value);
    if (!payload.phone) { show(problem, "请填写来电号码"); phone.focus(); return; }
    if (!payload.title) { show(problem, "请填写工单标题"); title.focus(); return; }
    save.disabled = true;
    const res = await api("POST", "/api/crm/phone_tickets", payload);
    save.disabled = false;
    if (!res.ok) { show(problem, res.data.reason || "创建失败，请稍后再试"); return; }
    created(res.data);
  });
  box.append(form);
  phone.focus();
}

function show(node, text) {
  node.textContent = text;
  node.classList.toggle("hidden", !text);
}

/** 请回电 tickets: the handler may reveal the caller's full number (the hub audits every look). */
export function callbackPhone(ticket, meId) {
  const wanted = ticket.title.startsWith("请回电：") || ticket.source === "message";
  if (!wanted || ticket.assignee_id !== meId) return null;
  const out = el("div", { class: "callback-phone", "data-testid": "callback-phone" });
  const button = el("button", {
    class: "btn btn-sm", type: "button", "data-testid": "callback-phone-show",
    title: "查看完整号码以便回电（查看会记入日志）",
    onclick: async () => {
      button.disabled = true;
      const res = await api("GET", `/api/crm/tickets/${ticket.id}/callback_phone`);
      if (!res.ok) { button.disabled = false; out.textContent = res.data.reason || "无法查看号码"; return; }
      button.remove();
      out.append("回电号码：", el("a", { href: `tel:${res.data.phone}`, "data-testid": "callback-phone-number", text: res.data.phone }),
        el("span", { class: "muted", text: "（本次查看已记录）" }));
    },
  }, "显示完整号码回电");
  out.append(button);
  return out;
}
