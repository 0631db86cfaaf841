// 用户管理: list staff, create (one-time initial password), change role / skill groups / name,
// disable and re-enable, reset a password, lift a login lock-out.
import { el, initStaffHeader, jsonRequest, showToast } from "/static/common.js";

const tbody = document.getElementById("users");
const count = document.getElementById("user-count");
const listError = document.getElementById("list-error");
const createForm = document.getElementById("create-form");
const createError = document.getElementById("create-error");
const passwordBox = document.getElementById("password-box");
const toast = document.getElementById("toast");
let roles = [];
let groups = [];
let me = null;

async function reasonOf(resp) {
  try {
    const data = await resp.json();
    if (data && data.reason) return data.reason;
  } catch (_) { /* not JSON */ }
  return `操作失败（${resp.status}），请稍后重试`;
}

function showPassword(title, password) {
  document.getElementById("password-title").textContent = title;
  document.getElementById("password-value").textContent = password;
  passwordBox.classList.remove("hidden");
  passwordBox.scrollIntoView({ block: "nearest" });
}
document.getElementById("password-close").addEventListener("click", () => passwordBox.classList.add("hidden"));

function roleSelect(value, testid) {
  const select = el("select", { class: "field", "data-testid": testid });
  for (const role of roles) select.append(el("option", { value: role.code }, role.name));
  select.value = value;
  return select;
}

function groupChoices(selected, name) {
  return groups.map((g) => el("label", { class: "group-choice" },
    el("input", { type: "checkbox", name, value: g, checked: selected.includes(g) ? "" : null }), g));
}

function checkedGroups(root, name) {
  return [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

async function change(user, url, method, body, done) {
  const resp = await jsonRequest(method, url, body);
  if (!resp.ok) {
    showToast(toast, await reasonOf(resp));
    await load();
    return null;
  }
  const data = await resp.json();
  if (done) done(data);
  await load();
  return data;
}

function statusCell(user) {
  const tags = [el("span", { class: user.active ? "tag tag-green" : "tag tag-gray" }, user.active ? "启用" : "已停用")];
  if (user.locked_seconds) {
    const minutes = user.locked_seconds > 0 ? Math.ceil(user.locked_seconds / 60) : null;
    tags.push(el("span", { class: "tag tag-orange", "data-testid": "locked" }, minutes ? `已锁定（${minutes} 分钟）` : "已锁定"));
  }
  if (user.must_change_password) tags.push(el("span", { class: "tag tag-gray" }, "待改初始密码"));
  return el("td", {}, ...tags);
}

function row(user) {
  const tr = el("tr", { class: `user-row${user.active ? "" : " disabled"}`, "data-username": user.username });
  const role = roleSelect(user.role, "role");
  const self = me && me.id === user.id;
  role.disabled = self;
  role.addEventListener("change", () => change(user, `/api/admin/users/${user.id}`, "PATCH", { role: role.value },
    () => showToast(toast, `已将 ${user.display_name} 的角色改为 ${role.selectedOptions[0].textContent}`)));
  const groupCell = el("td", {}, ...groupChoices(user.skill_groups, `g${user.id}`));
  groupCell.addEventListener("change", () => change(user, `/api/admin/users/${user.id}`, "PATCH",
    { skill_groups: checkedGroups(groupCell, `g${user.id}`) }, () => showToast(toast, "技能组已保存")));
  const actions = el("div", { class: "user-actions" });
  if (!self) {
    actions.append(el("button", {
      class: user.active ? "btn btn-sm btn-danger" : "btn btn-sm", type: "button", "data-testid": user.active ? "disable" : "enable",
      onclick: () => {
        if (user.active && !confirm(`停用 ${user.display_name}（${user.username}）？停用后立即退出登录，无法再登录。`)) return;
        change(user, `/api/admin/users/${user.id}`, "PATCH", { active: !user.active },
          () => showToast(toast, user.active ? "已停用" : "已启用"));
      },
    }, user.active ? "停用" : "启用"));
  }
  actions.append(el("button", {
    class: "btn btn-sm", type: "button", "data-testid": "reset-password",
    onclick: () => {
      if (!confirm(`重置 ${user.display_name} 的密码？其当前登录将全部退出。`)) return;
      change(user, `/api/admin/users/${user.id}/reset-password`, "POST", {},
        (data) => showPassword(`${user.display_name}（${user.username}）的密码已重置`, data.password));
    },
  }, "重置密码"));
  if (user.locked_seconds) {
    actions.append(el("button", {
      class: "btn btn-sm", type: "button", "data-testid": "unlock",
      onclick: () => change(user, `/api/admin/users/${user.id}/unlock`, "POST", {}, () => showToast(toast, "已解除锁定")),
    }, "解除锁定"));
  }
  tr.append(
    el("td", {}, user.username),
    el("td", {}, user.display_name),
    el("td", {}, role),
    groupCell,
    statusCell(user),
    el("td", {}, actions),
  );
  return tr;
}

async function load() {
  const resp = await fetch("/api/admin/users", { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!resp.ok) {
    listError.textContent = await reasonOf(resp);
    listError.classList.remove("hidden");
    return;
  }
  listError.classList.add("hidden");
  const data = await resp.json();
  roles = data.roles;
  groups = data.groups;
  count.textContent = `共 ${data.items.length} 人`;
  tbody.replaceChildren(...data.items.map(row));
}

async function fillCreateForm() {
  const select = document.getElementById("new-role");
  select.replaceChildren(...roles.map((r) => el("option", { value: r.code }, r.name)));
  select.value = "agent";
  document.getElementById("new-groups").replaceChildren(...groupChoices([], "new-group"));
}

createForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  createError.classList.add("hidden");
  const body = {
    username: document.getElementById("new-username").value.trim(),
    display_name: document.getElementById("new-display-name").value.trim(),
    role: document.getElementById("new-role").value,
    skill_groups: checkedGroups(createForm, "new-group"),
  };
  if (!body.username || !body.display_name) {
    createError.textContent = "请填写用户名和姓名";
    createError.classList.remove("hidden");
    return;
  }
  const resp = await jsonRequest("POST", "/api/admin/users", body);
  if (!resp.ok) {
    createError.textContent = await reasonOf(resp);
    createError.classList.remove("hidden");
    return;
  }
  const data = await resp.json();
  createForm.reset();
  showPassword(`已新建 ${data.user.display_name}（${data.user.username}）`, data.password);
  await load();
  await fillCreateForm();
});

me = await initStaffHeader("/admin/users");
await load();
await fillCreateForm();
