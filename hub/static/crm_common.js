// Helpers shared by the CRM parts of the pages (客户信息 panel, 工单 page).

export const TICKET_STATUS = { open: "待处理", processing: "处理中", resolved: "已解决", closed: "已关闭" };

/** JSON over fetch with the session cookie: {ok, status, data}; never throws. */
export async function api(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    if (body instanceof FormData) {
      init.body = body;
    } else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  try {
    const resp = await fetch(url, init);
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!data || typeof data !== "object") data = {};
    if (!resp.ok && !data.reason) data.reason = `请求失败（${resp.status}）`;
    return { ok: resp.ok, status: resp.status, data };
  } catch (_) {
    return { ok: false, status: 0, data: { reason: "网络错误，请稍后再试" } };
  }
}

/** "剩余 3小时12分" / "已超时 1天2小时" from seconds to the deadline (negative: past it). */
export function formatDue(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const late = seconds < 0;
  let s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60);
  let text;
  if (d > 0) text = `${d}天${h}小时`;
  else if (h > 0) text = `${h}小时${m}分`;
  else text = `${Math.max(m, late ? 1 : 0)}分钟`;
  return late ? `已超时 ${text}` : `剩余 ${text}`;
}

/** A datetime-local input's value ("2026-12-01T17:30", Beijing time as the agent sees it). */
export function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A local datetime-local value as an ISO string with the browser's offset (the hub stores UTC). */
export function isoFromLocalInput(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}
