// How a citizen's file shows in a staff transcript (坐席工作台 and 班长看板 监听): a thumbnail for
// images, a download link for other files and WeChat voice, and why a WeChat file is missing.
// hub/uploads.py keeps and serves them (web uploads, WeChat images and voice), to staff only.
import { el, appendLinkified } from "/static/common.js";

function attachmentOf(m) {
  const a = m && m.meta && m.meta.attachment;
  if (!a || typeof a !== "object" || typeof a.url !== "string" || !a.url.startsWith("/api/web/uploads/")) return null;
  return a;
}

/** Why a WeChat image's or voice message's file could not be fetched (the message itself is kept). */
function mediaErrorOf(m) {
  const reason = m && m.meta && m.meta.media_error_text;
  return typeof reason === "string" && reason ? reason : "";
}

function formatSize(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n <= 0) return "";
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1).replace(/\.0$/, "")} MB`;
  return `${Math.max(1, Math.round(n / 1024))} KB`;
}

/**
 * The file as a thumbnail (images) or a download link; `text` is shown above it unless it only says what
 * the file is ("[图片]", "[文件] name") — e.g. a WeChat voice message's recognised words.
 */
function buildAttachment(a, text) {
  const name = String(a.name || "附件");
  let file;
  if (String(a.type || "").startsWith("image/")) {
    file = el("a", {
      class: "msg-image", href: a.url, target: "_blank", rel: "noopener", title: `${name}（点击查看原图）`, "data-testid": "msg-image",
    }, el("img", { src: a.url, alt: name, loading: "lazy" }));
  } else {
    const audio = String(a.type || "").startsWith("audio/");
    file = el("a", {
      class: "msg-file", href: a.url, target: "_blank", rel: "noopener", download: name, "data-testid": "msg-file",
    },
      el("span", { class: "file-icon", "aria-hidden": "true", text: audio ? "🎤" : "📄" }),
      el("span", { class: "file-name", text: audio ? `${name}（语音，点击下载）` : name }),
      el("span", { class: "file-size", text: formatSize(a.size) }));
  }
  const caption = String(text ?? "");
  if (!caption || caption === "[图片]" || caption === `[文件] ${name}`) return file;
  const box = el("div", { class: "msg-text" });
  appendLinkified(box, caption);
  return el("div", {}, box, file);
}

/** A transcript message's bubble content: its text with links, its file, or why its file is missing. */
export function messageBody(m) {
  const text = String((m && m.text) ?? "");
  const attachment = attachmentOf(m);
  if (attachment) return buildAttachment(attachment, text);
  const body = el("div", { class: "msg-text" });
  appendLinkified(body, text);
  const mediaError = mediaErrorOf(m);
  if (mediaError) body.append(el("div", { class: "msg-media-error muted", "data-testid": "msg-media-error", text: mediaError }));
  return body;
}
