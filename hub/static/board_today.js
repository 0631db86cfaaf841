// 今日数据 on the 班长看板: today's conversations, how many the bot handled alone, who waits now,
// who gave up waiting, and the day's 满意度. GET /api/supervisor/today (hub/routes/board_today.py);
// "排队中" is the live board's own count.
import { el } from "/static/common.js";

const REFRESH_MS = 30000;

function figure(key, label) {
  return el("div", { class: "fig", "data-testid": `today-${key}` },
    el("div", { class: "fig-value", text: "—" }), el("div", { class: "fig-label", text: label }));
}

/** Build the strip in `box`; returns setWaiting(n) for the live board to call. */
export function startToday(box) {
  const figs = {
    conversations: figure("conversations", "今日会话"),
    containment: figure("containment", "机器人独立解决"),
    waiting: figure("waiting", "排队中"),
    abandoned: figure("abandoned", "放弃排队"),
    csat: figure("csat", "今日满意度"),
  };
  box.append(...Object.values(figs));
  const put = (key, value, title = "") => {
    figs[key].querySelector(".fig-value").textContent = value;
    figs[key].title = title;
  };
  const load = async () => {
    try {
      const resp = await fetch("/api/supervisor/today", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) return;
      const d = await resp.json();
      put("conversations", String(d.conversations));
      put("containment", d.containment === null ? "—" : `${Math.round(d.containment * 100)}%`,
        `${d.bot_only} 个会话未转人工，${d.handed_off} 个转了人工`);
      put("abandoned", String(d.abandoned), "排队中自行离开（不含留言）的市民");
      put("csat", d.csat_average === null ? "暂无评价" : `${d.csat_average.toFixed(1)} 分`,
        `${d.csat_count} 条评价，满分 5 分`);
      figs.csat.querySelector(".fig-label").textContent = d.csat_count ? `今日满意度（${d.csat_count} 条评价）` : "今日满意度";
    } catch (_) { /* the next refresh tries again */ }
  };
  load();
  setInterval(load, REFRESH_MS);
  // the queue moved: today's counts have too (at most one fetch a few seconds)
  let last = null;
  let soon = null;
  return (n) => {
    put("waiting", String(n));
    if (n !== last && !soon) soon = setTimeout(() => { soon = null; load(); }, 2000);
    last = n;
  };
}
