// 智能推荐: knowledge-base answers the hub suggests for the conversation.
import { el } from "/static/common.js";
import { insertIntoReply } from "/static/agent/composer.js";
import { $, state, ui } from "/static/agent/state.js";

/* 智能推荐: KB answers for the citizen's last message */

export function handleAssist(frame) {
  const conv = state.convs.get(String(frame.conversation_id));
  if (!conv) return;
  const current = conv.assist && Number(conv.assist.message_id);
  if (current && Number(frame.message_id) < current) return; // an older message's answers came late
  conv.assist = frame;
  if (state.selected === conv.id) renderAssist(conv);
}

export function renderAssist(conv) {
  ui.assistList.textContent = "";
  const a = conv && !conv.ended ? conv.assist : null;
  const items = a && Array.isArray(a.items) ? a.items : [];
  ui.assistFor.classList.toggle("hidden", !a);
  ui.assistFor.textContent = a ? `市民：“${a.text}”` : "";
  ui.assistEmpty.classList.toggle("hidden", items.length > 0);
  ui.assistEmpty.textContent = !conv ? "接入会话后，这里会推荐知识库答案"
    : conv.ended ? "会话已结束"
      : !a ? "市民发来消息后，这里会推荐知识库答案" : "知识库中没有找到相关答案";
  for (const item of items) {
    const answer = String(item.short_answer || item.answer || "");
    ui.assistList.append(el("li", { class: "assist-item", "data-testid": "assist-item", dataset: { entryId: item.entry_id } },
      el("div", { class: "ai-head" },
        el("span", { class: "ai-q", text: item.question || "" }),
        item.branch ? el("span", { class: "tag tag-gray", text: item.branch }) : null),
      el("div", { class: "ai-a", text: answer }),
      el("button", {
        class: "btn btn-sm ai-insert",
        type: "button",
        "data-testid": "assist-insert",
        title: "插入到回复框",
        onclick: () => insertIntoReply(answer, false),
      }, "插入")));
  }
}
