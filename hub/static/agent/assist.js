// 智能推荐: knowledge-base answers the hub suggests for the conversation (the citizen's last lines read
// together), and a search box over the live KB for what the agent looks up themselves.
import { el } from "/static/common.js";
import { insertIntoReply } from "/static/agent/composer.js";
import { state, toast, ui } from "/static/agent/state.js";

export function handleAssist(frame) {
  const conv = state.convs.get(String(frame.conversation_id));
  if (!conv) return;
  const current = conv.assist && Number(conv.assist.message_id);
  if (current && Number(frame.message_id) < current) return; // an older message's answers came late
  conv.assist = frame;
  if (state.selected === conv.id) renderAssist(conv);
}

export function renderAssist(conv) {
  const search = state.kbSearch;
  if (search.query) { renderItems(search.items, search.done ? "知识库中没有找到相关答案" : "正在搜索…", conv); return; }
  const a = conv && !conv.ended ? conv.assist : null;
  const items = a && Array.isArray(a.items) ? a.items : [];
  ui.assistFor.classList.toggle("hidden", !a);
  ui.assistFor.textContent = a ? `市民：“${a.text}”` : "";
  renderItems(items, !conv ? "接入会话后，这里会推荐知识库答案"
    : conv.ended ? "会话已结束"
      : !a ? "市民发来消息后，这里会推荐知识库答案" : "知识库中没有找到相关答案", conv);
}

function renderItems(items, emptyText, conv) {
  ui.assistList.textContent = "";
  ui.assistEmpty.classList.toggle("hidden", items.length > 0);
  ui.assistEmpty.textContent = emptyText;
  const usable = !!conv && !conv.ended;
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
        title: usable ? "插入到回复框" : "接入会话后可插入",
        disabled: usable ? null : true,
        onclick: () => insertIntoReply(answer, false),
      }, "插入")));
  }
}

/** The search box: the live KB's best matches for what the agent typed (empty: back to 智能推荐). */
export function searchKb() {
  const search = state.kbSearch;
  const query = ui.assistSearch.value.trim();
  clearTimeout(search.timer);
  search.query = query;
  search.items = [];
  search.done = false;
  const seq = ++search.seq;
  if (query) ui.assistFor.classList.add("hidden");
  renderAssist(state.convs.get(state.selected));
  if (!query) return;
  search.timer = setTimeout(async () => {
    let items = [];
    try {
      const resp = await fetch(`/api/handoff/kb_search?${new URLSearchParams({ q: query })}`, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(data.reason || "知识库搜索失败，请稍后再试");
      items = Array.isArray(data.items) ? data.items : [];
    } catch (err) {
      if (seq === search.seq) toast(err.message);
    }
    if (seq !== search.seq) return; // a newer search won
    search.items = items;
    search.done = true;
    renderAssist(state.convs.get(state.selected));
  }, 250);
}
