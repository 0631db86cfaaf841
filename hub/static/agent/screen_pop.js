// The 客户信息 panel: hands the selected conversation to the CRM's panel (hub/static/crm_panel.js).
import { el } from "/static/common.js";
import { ui } from "/static/agent/state.js";

export function renderScreenPop(conv) {
  const pop = ui.pop;
  if (conv) {
    // the CRM's panel (hub/static/crm_panel.js): profile form, 合并客户, tickets, history
    window.crmPanel.render(pop, conv);
    return;
  }
  pop.textContent = "";
  pop.append(el("h2", { class: "panel-title" }, "客户信息"),
    el("p", { class: "empty", text: "接入会话后显示客户信息" }));
}
