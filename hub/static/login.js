// Staff login: POST /api/login with JSON, then go to ?next= (same-origin paths only) or the role's
// home page; an initial or reset password first goes to 修改密码.
import { jsonRequest } from "/static/common.js";
import { sameOriginPath } from "/static/next_path.js";

const form = document.getElementById("login-form");
const username = document.getElementById("username");
const password = document.getElementById("password");
const submit = document.getElementById("login-submit");
const errorBox = document.getElementById("login-error");

function showError(text) {
  errorBox.textContent = text;
  errorBox.classList.remove("hidden");
}

function clearError() {
  errorBox.textContent = "";
  errorBox.classList.add("hidden");
}

async function readReason(resp) {
  try {
    const data = await resp.json();
    if (data && typeof data.reason === "string" && data.reason) return data.reason;
  } catch (_) { /* not JSON */ }
  return null;
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearError();
  const user = username.value.trim();
  const pass = password.value;
  if (!user || !pass) {
    showError(!user ? "请输入用户名" : "请输入密码");
    (!user ? username : password).focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = "登录中…";
  try {
    const resp = await jsonRequest("POST", "/api/login", { username: user, password: pass });
    if (resp.ok) {
      const me = await resp.json().catch(() => ({}));
      const next = sameOriginPath(new URLSearchParams(location.search).get("next"), "");
      if (me.must_change) {
        location.href = next ? `/password?next=${encodeURIComponent(next)}` : "/password";
        return;
      }
      location.href = next || me.home || "/agent";
      return;
    }
    const reason = await readReason(resp);
    if (resp.status >= 400 && resp.status < 500) {
      showError(reason || "用户名或密码错误");
    } else {
      showError(reason || `服务器暂时无法处理请求（${resp.status}），请稍后重试`);
    }
    password.select();
  } catch (_) {
    showError("网络连接失败，请检查网络后重试");
  } finally {
    submit.disabled = false;
    submit.textContent = "登录";
  }
});

username.addEventListener("input", clearError);
password.addEventListener("input", clearError);
username.focus();
