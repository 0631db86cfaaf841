// What survives a reload of the console (this browser tab only, sessionStorage): each conversation's
// unsent draft and the conversation being worked on. Closing the tab forgets both.

const DRAFTS_KEY = "zwkf.console.drafts";
const SELECTED_KEY = "zwkf.console.selected";
const MODES_KEY = "zwkf.console.notes"; // conversations whose reply box was left in 内部备注 mode
const MAX_DRAFTS = 50;

function read(key, fallback) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch (_) {
    return fallback;
  }
}

function write(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch (_) { /* storage full or disabled: the draft stays in memory only */ }
}

/** A Map of conversation id -> unsent text, written through to sessionStorage. */
export class DraftStore extends Map {
  constructor() {
    super(Object.entries(read(DRAFTS_KEY, {}) || {}).filter(([, v]) => typeof v === "string"));
  }

  set(id, text) {
    if (!text) { this.delete(id); return this; }
    super.delete(id); // newest last, so the oldest are dropped first
    super.set(id, text);
    while (this.size > MAX_DRAFTS) super.delete(this.keys().next().value);
    this.save();
    return this;
  }

  delete(id) {
    const had = super.delete(id);
    if (had) this.save();
    return had;
  }

  save() {
    write(DRAFTS_KEY, Object.fromEntries(this));
  }
}

export function rememberSelected(id) {
  write(SELECTED_KEY, id || null);
}

export function rememberedSelected() {
  const id = read(SELECTED_KEY, null);
  return typeof id === "string" ? id : null;
}

/** Whether a conversation's reply box was left in 内部备注 mode ("note") or not ("reply"). */
export function rememberMode(id, mode) {
  const notes = new Set(read(MODES_KEY, []) || []);
  if (mode === "note") notes.add(id); else notes.delete(id);
  write(MODES_KEY, notes.size ? [...notes].slice(-MAX_DRAFTS) : null);
}

export function rememberedMode(id) {
  const notes = read(MODES_KEY, []);
  return Array.isArray(notes) && notes.includes(id) ? "note" : "reply";
}
