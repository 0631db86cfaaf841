// 更新机器人模型: starting a retrain and following its progress.
import { $, api } from "/static/kb/state.js";

/* ------------------------------------------------------------------ 更新机器人模型 */

function retrainLine(job) {
  const secs = Math.round(job.elapsed || 0);
  if (job.running) {
    const pct = Number.isFinite(job.percent) ? `${job.percent}% · ` : "";
    return `${job.message || job.stage_label || "正在更新…"}（${pct}已用时 ${secs} 秒）`;
  }
  const nodes = job.nodes || [];
  if (nodes.length > 1 && job.stage === "done") {
    const ok = nodes.filter((n) => n.ok).length;
    return `${job.message || ""}（${nodes.length} 个机器人节点，${ok} 个已生效）`;
  }
  return job.message || "";
}

/* The bar beside the status text: the job's percent while it runs, hidden otherwise. */
function retrainBar(job) {
  let bar = $("retrain-progress");
  if (!bar) {
    bar = document.createElement("progress");
    bar.id = "retrain-progress";
    bar.max = 100;
    bar.dataset.testid = "retrain-progress";
    bar.style.width = "120px";
    $("retrain-status").before(bar);
  }
  bar.hidden = !job.running;
  bar.value = job.percent || 0;
  bar.title = job.train && job.train.epochs ? `第 ${job.train.epoch}/${job.train.epochs} 轮` : "";
  bar.setAttribute("aria-label", `更新机器人模型进度 ${job.percent || 0}%`);
}

let retrainTimer = null;
export async function pollRetrain() {
  clearTimeout(retrainTimer);
  let job;
  try {
    job = await api("GET", "/api/kb/retrain");
  } catch (e) {
    $("retrain-status").textContent = e.reason;
    $("retrain-start").disabled = false;
    return;
  }
  const node = $("retrain-status");
  node.textContent = job.stage === "idle" ? "" : retrainLine(job);
  node.dataset.stage = job.stage;
  node.dataset.percent = job.percent ?? "";
  node.title = (job.nodes || []).map((n) => `${n.url}：${n.message}`).join("\n");
  retrainBar(job);
  node.style.color = job.stage === "failed" ? "var(--red)" : job.stage === "done" ? "var(--green)" : "";
  $("retrain-start").disabled = Boolean(job.running);
  if (job.running) retrainTimer = setTimeout(pollRetrain, 1000);
}

$("retrain-start").addEventListener("click", async () => {
  $("retrain-start").disabled = true;
  $("retrain-status").textContent = "正在开始…";
  try {
    await api("POST", "/api/kb/retrain", {});
  } catch (e) {
    $("retrain-status").textContent = e.reason;  // 409: another update is running
  }
  pollRetrain();
});
