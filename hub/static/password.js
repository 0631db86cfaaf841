// 修改密码: POST /api/password {current, new}; then on to ?next= (same-origin only) or the home page.
import { jsonRequest } from "/static/common.js";
import { sameOriginPath } from "/static/next_path.js";

const form = document.getElementById("password-form");
const current = document.getElementById("current");
const fresh = document.getElementById("new");
const confirmBox = document.getElementById("confirm");
const submit = document.getElementById("password-submit");
const errorBox = document.getElementById("password-error");

function showError(text) {
  errorBox.textContent = text;
  errorBox.classList.remove("hidden");
}

// A change-password-first session is refused by /api/me with this code: say why the page is here.
const meResp = await fetch("/api/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
if (meResp.status === 403) document.getElementById("must-change").classList.remove("hidden");

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  errorBox.classList.add("hidden");
  if (!current.value || !fresh.value) return showError("请输入当前密码和新密码");
  if (fresh.value !== confirmBox.value) return showError("两次输入的新密码不一致");
  submit.disabled = true;
  try {
    const resp = await jsonRequest("POST", "/api/password", { current: current.value, new: fresh.value });
    const data = await resp.json().catch(() => ({}));
    if (resp.status === 401) {
      location.href = "/login?next=/password";
      return;
    }
    if (!resp.ok) return showError(data.reason || `保存失败（${resp.status}），请稍后重试`);
    const next = new URLSearchParams(location.search).get("next");
    location.href = sameOriginPath(next, data.home || "/agent");
  } catch (_) {
    showError("网络连接失败，请检查网络后重试");
  } finally {
    submit.disabled = false;
  }
});
current.focus();
