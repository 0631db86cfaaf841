// Staff login: POST /api/login with JSON, then go to ?next= (same-origin paths only) or the role's
// home page; an initial or reset password first goes to 修改密码. The heading names the page being
// opened (坐席工作台, 知识库 …), else it speaks to every role.
import { jsonRequest } from "/static/common.js";
import { sameOriginPath } from "/static/next_path.js";

const form = document.getElementById("login-form");
const username = document.getElementById("username");
const password = document.getElementById("password");
const submit = document.getElementById("login-submit");
const errorBox = document.getElementById("login-error");

// ?next= page -> [heading, line under it]
const FOR_PAGE = {
  "/agent": ["坐席登录", "请使用工作账号登录坐席工作台"],
  "/supervisor": ["班长登录", "请使用班长账号登录班长看板"],
  "/kb": ["知识库登录", "请使用知识库编辑或班长账号登录知识库"],
  "/tickets": ["工单登录", "请使用坐席或班长账号登录工单"],
};
const wanted = FOR_PAGE[(new URLSearchParams(location.search).get("next") || "").split(/[?#]/)[0]];
if (wanted) {
  const [title, sub] = wanted;
  document.getElementById("login-title").textContent = title;
  document.getElementById("login-sub").textContent = sub;
  document.getElementById("login-page-name").textContent = title;
  document.title = `${title} - 政务云客服`;
}

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
