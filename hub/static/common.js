// Small helpers shared by the hub's pages (ES module).

/** WebSocket URL for a path on this host, ws: or wss: following the page. */
export function wsUrl(path) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}

/** A random id for client_id fields; crypto.randomUUID needs a secure context. */
export function uuid() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    try { return window.crypto.randomUUID(); } catch (_) { /* fall through */ }
  }
  const bytes = new Uint8Array(16);
  if (window.crypto && window.crypto.getRandomValues) {
    window.crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Create an element: el("div", {class: "x", dataset: {id: 1}}, child, "text"). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function pad(n) { return String(n).padStart(2, "0"); }

const NAIVE_ISO = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/**
 * Milliseconds since the epoch for a server timestamp, or NaN.
 * Accepts ISO 8601 (a time without an offset is taken as UTC, which is what the hub stores),
 * epoch seconds (e.g. the queue's waiting_since) or epoch milliseconds.
 */
export function toMillis(value) {
  if (value === null || value === undefined || value === "") return NaN;
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  const str = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(str)) return toMillis(Number(str));
  return Date.parse(NAIVE_ISO.test(str) ? `${str.replace(" ", "T")}Z` : str);
}

function toDate(value) {
  const t = toMillis(value);
  return Number.isNaN(t) ? null : new Date(t);
}

/** "14:05" today, "11-24 14:05" this year, else "2025-11-24 14:05". */
export function formatTime(value) {
  const d = toDate(value);
  if (!d) return "";
  const now = new Date();
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === now.toDateString()) return hm;
  const md = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  if (d.getFullYear() === now.getFullYear()) return `${md} ${hm}`;
  return `${d.getFullYear()}-${md} ${hm}`;
}

/** "2025-11-24 14:05" always. */
export function formatDateTime(value) {
  const d = toDate(value);
  if (!d) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Elapsed time since an ISO timestamp, in Chinese: "45秒", "3分12秒", "1小时05分". */
export function formatWaiting(since, now = Date.now()) {
  const d = toDate(since);
  if (!d) return "";
  let s = Math.max(0, Math.floor((now - d.getTime()) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h > 0) return `${h}小时${pad(m)}分`;
  if (m > 0) return `${m}分${pad(s)}秒`;
  return `${s}秒`;
}

/** Append text to a node, turning http(s) links into <a> elements (no HTML is parsed). */
export function appendLinkified(node, text) {
  const re = /https?:\/\/[^\s<>"'，。；！？、）】]+/g;
  let last = 0;
  let match;
  const str = String(text ?? "");
  while ((match = re.exec(str)) !== null) {
    if (match.index > last) node.append(str.slice(last, match.index));
    node.append(el("a", { href: match[0], target: "_blank", rel: "noopener noreferrer" }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < str.length) node.append(str.slice(last));
}

/** Channel code → Chinese label. */
export function channelLabel(code) {
  const map = {
    web: "网页",
    webchat: "网页",
    wechat: "微信",
    voice: "电话",
    phone: "电话",
    telegram: "Telegram",
  };
  if (!code) return "未知";
  return map[String(code).toLowerCase()] || String(code);
}

/** The CSRF token of this page's session (the hub hands it out in the zwkf_csrf cookie, hub/csrf.py). */
export function csrfToken() {
  const found = document.cookie.match(/(?:^|;\s*)zwkf_csrf=([^;]*)/);
  return found ? decodeURIComponent(found[1]) : "";
}

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

// Every state-changing fetch a page makes to its own hub carries the token in X-CSRF-Token, whichever
// module makes it (JSON, FormData uploads and imports alike); the hub refuses such a request without it.
if (typeof window !== "undefined" && window.fetch && !window.fetch.zwkfCsrf) {
  const plainFetch = window.fetch.bind(window);
  const guarded = (input, init = {}) => {
    const request = input instanceof Request ? input : null;
    const method = String(init.method || (request ? request.method : "GET")).toUpperCase();
    const url = new URL(request ? request.url : String(input), location.href);
    if (UNSAFE_METHODS.has(method) && url.origin === location.origin) {
      const headers = new Headers(init.headers || (request ? request.headers : undefined));
      if (!headers.has("X-CSRF-Token")) headers.set("X-CSRF-Token", csrfToken());
      return plainFetch(input, { ...init, headers });
    }
    return plainFetch(input, init);
  };
  guarded.zwkfCsrf = true;
  window.fetch = guarded;
}

/** fetch() with the session cookie, the CSRF token, a JSON body and JSON asked for back; rejects as fetch does. */
export function jsonRequest(method, url, body) {
  return fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body),
  });
}

// The staff pages every staff header links to, in order (班长看板 and page tools are in each page's HTML).
const STAFF_NAV = [["/agent", "坐席工作台"], ["/kb", "知识库"], ["/tickets", "工单"]];

/**
 * Complete the page's <header class="app-header"> around what its HTML holds (its own <nav> links
 * and its own controls in <span class="user">): the brand (linking to data-home, else this page),
 * the staff pages before the page's own links with this one marked, a spacer, then the person's name
 * and 退出 after the controls.
 */
function renderStaffHeader(pagePath) {
  const header = document.querySelector("header.app-header");
  if (!header) return;
  const nav = header.querySelector("nav") || el("nav");
  const user = header.querySelector(".user") || el("span", { class: "user" });
  nav.prepend(...STAFF_NAV.map(([href, label]) => el("a", { href, class: href === pagePath ? "active" : null }, label)));
  user.append(
    el("span", { id: "agent-name", "data-testid": "agent-name" }),
    el("a", { id: "logout", href: "/login", "data-testid": "logout" }, "退出"),
  );
  const brand = el("a", { class: "brand", href: header.dataset.home || pagePath },
    el("span", { class: "brand-mark", "aria-hidden": "true" }, "政"), "政务云客服");
  header.replaceChildren(brand, nav, el("span", { class: "spacer" }), user);
}

/** The header offers only the pages this role may open (/api/me lists them); 班长看板 is shown when allowed. */
function hideClosedPages(me) {
  if (!Array.isArray(me.pages)) return;
  const open = new Set(me.pages);
  for (const link of document.querySelectorAll("header.app-header nav a[href^='/']")) {
    const path = link.getAttribute("href").split(/[?#]/)[0];
    if (!["/agent", "/kb", "/tickets", "/supervisor"].includes(path)) continue;
    link.classList.toggle("hidden", !open.has(path));
  }
}

/**
 * Build the staff header for the page at `pagePath` and fill it (name + logout). Redirects to login
 * (back to `pagePath` afterwards) on 401. Returns the user or null.
 */
export async function initStaffHeader(pagePath) {
  renderStaffHeader(pagePath);
  const nameEl = document.getElementById("agent-name");
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async (ev) => {
      ev.preventDefault();
      try {
        await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
      } catch (_) { /* go to the login page anyway */ }
      location.href = "/login";
    });
  }
  try {
    const resp = await fetch("/api/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (resp.status === 401 || resp.status === 403) {
      location.href = `/login?next=${encodeURIComponent(pagePath)}`;
      return null;
    }
    if (!resp.ok) return null;
    const me = await resp.json();
    if (nameEl) nameEl.textContent = me.display_name || me.username || "";
    hideClosedPages(me);
    return me;
  } catch (_) {
    return null;
  }
}

// A transient message in a page's toast element (one timer per element).
const toastTimers = new WeakMap();
export function showToast(node, text, ms = 4000) {
  node.textContent = text;
  node.classList.remove("hidden");
  clearTimeout(toastTimers.get(node));
  toastTimers.set(node, setTimeout(() => node.classList.add("hidden"), ms));
}

// Send one JSON frame on an open socket; `notify` says why in Chinese when it cannot.
export function sendJson(ws, frame, notify) {
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    notify("与服务器的连接已断开，正在重连，请稍后再试");
    return false;
  }
  try {
    ws.send(JSON.stringify(frame));
    return true;
  } catch (_) {
    notify("发送失败，请稍后再试");
    return false;
  }
}

// Reconnect a dropped socket with jittered exponential backoff (1 s doubling to 30 s). `state`
// holds `attempts` (a page resets it to 0 once a socket opens) and the pending timer; `notify`
// shows the countdown in Chinese.
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30000;
export function scheduleReconnect(state, connect, notify, lostText = "与服务器的连接已断开") {
  if (state.reconnectTimer) return;
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** state.attempts);
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  state.attempts += 1;
  notify(`${lostText}，${Math.ceil(delay / 1000)} 秒后自动重连…`);
  state.reconnectTimer = setTimeout(() => {
    state.reconnectTimer = null;
    notify("正在重新连接…");
    connect();
  }, delay);
}

/** The fields keepStaffSocket keeps on a page's state object, before the first socket. */
export function staffSocketState() {
  return { ws: null, online: false, attempts: 0, reconnectTimer: null, pingTimer: null };
}

// The hub closes a staff socket with this code when the session is gone (hub/app.py, agent_socket).
const AUTH_CLOSE_CODE = 4401;
const PING_MS = 25000;

/**
 * Keep a staff page's WebSocket to the hub open: ping it while it is up, hand each JSON frame to
 * `onFrame`, send the person to the login page (back to `page` afterwards) when the hub refuses the
 * session, and reconnect with backoff after a drop or when the browser is back online.
 *
 * `conn` is the page's state object; this keeps `ws`, `online`, `attempts`, `reconnectTimer` and
 * `pingTimer` on it. The connection dot and banner show the state; `onOnlineChange(online)` updates
 * whatever else depends on it. `onOpen(ws)` runs once each socket is up (ask the hub for what the page
 * shows), `onDrop()` after a socket drops, before the reconnect is scheduled.
 * Returns `connect`: call it once the page is wired.
 */
export function keepStaffSocket(conn, { path, page, dot, banner, onOpen, onFrame, onDrop, onOnlineChange }) {
  function setOnline(online, text) {
    conn.online = online;
    dot.dataset.state = online ? "online" : (conn.attempts > 0 ? "offline" : "connecting");
    dot.title = online ? "已连接" : "未连接";
    if (online) banner.classList.add("hidden");
    else if (text) { banner.textContent = text; banner.classList.remove("hidden"); }
    if (onOnlineChange) onOnlineChange(online);
  }

  function reconnectLater() {
    scheduleReconnect(conn, connect, (text) => setOnline(false, text));
  }

  function connect() {
    clearTimeout(conn.reconnectTimer);
    conn.reconnectTimer = null;
    let ws;
    try { ws = new WebSocket(wsUrl(path)); } catch (_) { reconnectLater(); return; }
    conn.ws = ws;
    ws.addEventListener("open", () => {
      if (conn.ws !== ws) return;
      conn.attempts = 0;
      setOnline(true);
      if (onOpen) onOpen(ws);
      clearInterval(conn.pingTimer);
      conn.pingTimer = setInterval(() => {
        if (conn.ws === ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
      }, PING_MS);
    });
    ws.addEventListener("message", (ev) => {
      if (conn.ws !== ws) return;
      let frame;
      try { frame = JSON.parse(ev.data); } catch (_) { return; }
      if (frame && typeof frame === "object") onFrame(frame);
    });
    ws.addEventListener("close", (ev) => {
      if (conn.ws !== ws) return;
      conn.ws = null;
      clearInterval(conn.pingTimer);
      if (ev.code === AUTH_CLOSE_CODE) {
        location.href = `/login?next=${page}`;
        return;
      }
      if (onDrop) onDrop();
      reconnectLater();
    });
  }

  window.addEventListener("online", () => { if (!conn.ws) connect(); });
  return connect;
}
