// Parts of the citizen's chat that speak for themselves: the 满意度评价 stars, the estimated wait,
// the 留言 form and the previous conversation shown read-only. chat.js wires them to its socket.
import { el } from "/static/common.js";

const SCORE_LABEL = { 1: "非常不满意", 2: "不满意", 3: "一般", 4: "满意", 5: "非常满意" };

/** Five stars under the hub's rating prompt (meta.csat); `rate(score)` sends the csat frame. */
export function ratingRow(meta, rate) {
  const row = el("div", { class: "csat-row", "data-testid": "chat-csat", role: "group", "aria-label": "满意度评价" });
  const note = el("span", { class: "csat-note", "data-testid": "chat-csat-note", text: "请点击星星评分" });
  const stars = [];
  for (let score = 1; score <= 5; score += 1) {
    const star = el("button", {
      class: "csat-star", type: "button", "data-testid": "chat-csat-star", dataset: { score: String(score) },
      title: `${score} 分：${SCORE_LABEL[score]}`, "aria-label": `${score} 分，${SCORE_LABEL[score]}`, text: "★",
      onmouseenter: () => { light(stars, score); note.textContent = `${score} 分：${SCORE_LABEL[score]}`; },
      onmouseleave: () => { if (!row.dataset.score) { light(stars, 0); note.textContent = "请点击星星评分"; } },
      onclick: () => {
        if (row.dataset.score || !rate(score)) return;
        row.dataset.pending = String(score);
        light(stars, score);
        for (const s of stars) s.disabled = true;
        note.textContent = "正在提交…";
      },
    });
    stars.push(star);
  }
  row.append(...stars, note);
  if (meta && meta.rated) showRated(row, meta.rated);
  return row;
}

function light(stars, score) {
  stars.forEach((s, i) => s.classList.toggle("on", i < score));
}

function showRated(row, score) {
  const stars = [...row.querySelectorAll(".csat-star")];
  row.dataset.score = String(score || row.dataset.pending || "");
  delete row.dataset.pending;
  if (score) light(stars, score);
  for (const s of stars) s.disabled = true;
  row.querySelector(".csat-note").textContent = score ? `已评价 ${score} 分，感谢！` : "已评价，感谢！";
}

/** The hub stored a rating (a "done" frame, or its thanks message): every prompt shows it as given. */
export function markRated(root, score) {
  for (const row of root.querySelectorAll(".csat-row")) {
    if (score || !row.dataset.score) showRated(row, score || Number(row.dataset.pending) || 0); // the latest rating wins
  }
}

/** A rating the hub refused (e.g. too late): the stars can be used again. */
export function unmarkPending(root) {
  for (const row of root.querySelectorAll(".csat-row[data-pending]")) {
    delete row.dataset.pending;
    for (const s of row.querySelectorAll(".csat-star")) { s.disabled = false; s.classList.remove("on"); }
    row.querySelector(".csat-note").textContent = "请点击星星评分";
  }
}

/** "预计等待约 3 分钟" from the hub's estimate in seconds (null: no estimate). */
export function waitText(etaSeconds) {
  const secs = Number(etaSeconds);
  if (etaSeconds === null || etaSeconds === undefined || !Number.isFinite(secs) || secs < 0) return "";
  if (secs < 60) return "预计等待不到 1 分钟";
  return `预计等待约 ${Math.round(secs / 60)} 分钟`;
}

/** The status line while queued: who is ahead and the estimated wait, never "前面还有 0 人". */
export function queuedText(queuePosition, etaSeconds) {
  const ahead = Number.isInteger(queuePosition) ? Math.max(0, queuePosition - 1) : null;
  const wait = waitText(etaSeconds);
  const who = ahead === null ? "排队中" : ahead === 0 ? "排队中，您是下一位" : `排队中，您前面还有 ${ahead} 人`;
  return wait ? `${who}，${wait}` : (ahead === null ? "排队中，请稍候…" : who);
}
