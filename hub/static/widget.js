/*
 * 政务服务在线咨询 — the embeddable chat widget.
 *
 *   <script src="https://HUB/static/widget.js" data-hub="https://HUB" async></script>
 *
 * Adds a floating 在线咨询 button to the bureau's page; it opens a panel holding the hub's chat
 * page (HUB/chat?embed=1) in an iframe. The hub lets only the origins listed in
 * config.yml channels.web.allowed_origins frame the page.
 *
 * A site that is not on that list cannot show the panel: the widget asks the hub first
 * (/api/web/embed_check), says so in the browser console for the site's owner and on the button, and
 * opens the chat page in a new tab instead.
 *
 * Optional attributes: data-title (button text, default 在线咨询), data-position (right | left).
 * Script API: window.ZwkfWidget.open() / .close() / .toggle().
 *
 * Written in ES5 on purpose (no arrow functions, classes, let/const, template strings) so that
 * old in-app browsers (WeChat's X5 kernel, old Android WebViews) run it.
 */
(function () {
  "use strict";
  if (window.ZwkfWidget) return; // the tag was included twice

  var script = document.currentScript;
  if (!script) {
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/static\/widget\.js(\?|#|$)/.test(scripts[i].src || "")) { script = scripts[i]; break; }
    }
  }
  if (!script) return;

  function originOf(url) {
    var a = document.createElement("a");
    a.href = url;
    // IE/old WebKit leave host empty for relative URLs until re-assigned
    if (!a.host) a.href = a.href;
    var port = a.port && !((a.protocol === "http:" && a.port === "80") || (a.protocol === "https:" && a.port === "443"))
      ? ":" + a.port : "";
    return a.protocol + "//" + a.hostname + port;
  }

  var hub = (script.getAttribute("data-hub") || originOf(script.src)).replace(/\/+$/, "");
  var hubOrigin = originOf(hub);
  var title = script.getAttribute("data-title") || "在线咨询";
  var position = script.getAttribute("data-position") === "left" ? "left" : "right";

  var root, button, badge, panel, frame, frameReady = false, isOpen = false, lastFocus = null, blocked = false, labelNode;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, attrs[key]);
    }
    if (text) node.appendChild(document.createTextNode(text));
    return node;
  }

  function addClass(node, name) {
    if ((" " + node.className + " ").indexOf(" " + name + " ") < 0) node.className = (node.className + " " + name).replace(/^\s+/, "");
  }

  function removeClass(node, name) {
    node.className = (" " + node.className + " ").replace(" " + name + " ", " ").replace(/^\s+|\s+$/g, "");
  }

  function tell(type) {
    if (frame && frame.contentWindow && frameReady) {
      try { frame.contentWindow.postMessage({ source: "zwkf-widget", type: type }, hubOrigin); } catch (e) { /* closed */ }
    }
  }

  function setUnread(count) {
    count = Math.max(0, parseInt(count, 10) || 0);
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.style.display = count > 0 && !isOpen ? "" : "none";
    button.setAttribute("aria-label", count > 0 ? title + "（" + count + " 条新消息）" : title);
  }

  function ensureFrame() {
    if (frame) return;
    frame = el("iframe", {
      id: "zwkf-widget-frame",
      "class": "zwkf-widget-frame",
      title: title,
      src: hub + "/chat?embed=1",
      allow: "clipboard-write"
    });
    panel.appendChild(frame);
  }

  function open() {
    if (isOpen) return;
    isOpen = true;
    lastFocus = document.activeElement;
    ensureFrame();
    addClass(root, "zwkf-open");
    panel.setAttribute("aria-hidden", "false");
    button.setAttribute("aria-expanded", "true");
    setUnread(0);
    tell("open");
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    removeClass(root, "zwkf-open");
    panel.setAttribute("aria-hidden", "true");
    button.setAttribute("aria-expanded", "false");
    tell("close");
    if (lastFocus && lastFocus.focus) { try { lastFocus.focus(); } catch (e) { /* gone */ } } else { button.focus(); }
  }

  function toggle() {
    if (blocked) { openInNewTab(); return; }
    if (isOpen) close(); else open();
  }

  function openInNewTab() {
    var tab = window.open(hub + "/chat", "_blank");
    if (tab) { try { tab.opener = null; } catch (e) { /* cross-origin */ } }
  }

  /* This page may not frame the chat: warn its owner, say so on the button, open /chat in a tab. */
  function refuseFraming(origin) {
    blocked = true;
    if (window.console && console.warn) {
      console.warn("[政务云客服] 本站（" + origin + "）不在 channels.web.allowed_origins 允许列表中，"
        + "在线咨询窗口无法嵌入本页，已改为在新窗口打开 " + hub + "/chat 。请联系客服系统管理员把本站加入允许列表。");
    }
    root.setAttribute("data-blocked", "true");
    button.setAttribute("aria-haspopup", "false");
    button.removeAttribute("aria-controls");
    button.setAttribute("title", "本站暂未接入在线咨询窗口，点击将在新窗口打开在线咨询");
    button.setAttribute("aria-label", title + "（在新窗口打开）");
    labelNode.textContent = title + "（新窗口）";
  }

  function checkFraming() {
    if (!window.XMLHttpRequest) return;
    var xhr = new XMLHttpRequest();
    try {
      xhr.open("GET", hub + "/api/web/embed_check", true);
    } catch (e) { return; }
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4 || xhr.status !== 200) return;
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { return; }
      if (data && data.allowed === false) refuseFraming(data.origin || originOf(location.href));
    };
    try { xhr.send(); } catch (e) { /* offline: the panel is tried as usual */ }
  }

  function onMessage(ev) {
    if (ev.origin !== hubOrigin || !frame || ev.source !== frame.contentWindow) return;
    var data = ev.data;
    if (!data || data.source !== "zwkf-chat") return;
    if (data.type === "ready") {
      frameReady = true;
      tell(isOpen ? "open" : "close");
    } else if (data.type === "close") {
      close();
    } else if (data.type === "unread") {
      setUnread(data.count);
    }
  }

  function build() {
    if (!document.getElementById("zwkf-widget-css")) {
      var css = el("link", { id: "zwkf-widget-css", rel: "stylesheet", href: hub + "/static/widget.css" });
      (document.head || document.documentElement).appendChild(css);
    }
    root = el("div", { id: "zwkf-widget", "class": "zwkf-widget zwkf-" + position });
    button = el("button", {
      id: "zwkf-widget-button",
      "class": "zwkf-widget-button",
      type: "button",
      "aria-haspopup": "dialog",
      "aria-expanded": "false",
      "aria-controls": "zwkf-widget-panel",
      "aria-label": title
    });
    var icon = el("span", { "class": "zwkf-widget-icon", "aria-hidden": "true" });
    icon.innerHTML = '<svg viewBox="0 0 24 24" width="22" height="22" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>';
    button.appendChild(icon);
    labelNode = el("span", { "class": "zwkf-widget-label" }, title);
    button.appendChild(labelNode);
    badge = el("span", { id: "zwkf-widget-badge", "class": "zwkf-widget-badge", "aria-hidden": "true" });
    badge.style.display = "none";
    button.appendChild(badge);
    panel = el("div", {
      id: "zwkf-widget-panel",
      "class": "zwkf-widget-panel",
      role: "dialog",
      "aria-label": title,
      "aria-hidden": "true"
    });
    root.appendChild(panel);
    root.appendChild(button);
    document.body.appendChild(root);
    checkFraming();

    if (button.addEventListener) {
      button.addEventListener("click", toggle, false);
      window.addEventListener("message", onMessage, false);
      document.addEventListener("keydown", function (ev) {
        if (isOpen && (ev.key === "Escape" || ev.keyCode === 27)) close();
      }, false);
    }
  }

  window.ZwkfWidget = { open: open, close: close, toggle: toggle, hub: hub };
  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build, false);
})();
