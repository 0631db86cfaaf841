// Where to go after logging in (?next=): only a path on this very origin. The browser's own URL
// parser decides, so tricks it would undo ("/%09/evil.test" → "//evil.test", "/\evil.test",
// "javascript:…") all land on the fallback.
export function sameOriginPath(value, fallback) {
  if (typeof value !== "string" || !value.startsWith("/")) return fallback;
  let url;
  try {
    url = new URL(value, location.origin);
  } catch (_) {
    return fallback;
  }
  if (url.origin !== location.origin) return fallback;
  return url.pathname + url.search + url.hash;
}
