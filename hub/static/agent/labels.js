// How the console names why a citizen was handed to a person (the dispatcher's `reason`, see flow/dispatch.py).

const REASONS = {
  button: "市民点击转人工",
  keyword: "说了转人工关键词",
  anger: "市民情绪激动",
  flagged_citizen: "重点关注的市民",
  kb_entry: "知识条目要求人工办理",
  bot_unavailable: "机器人暂不可用",
  kb_declined: "机器人多次未能回答",
  out_of_scope: "多次问到服务范围外的问题",
  request_human: "市民要求人工客服",
  complaint: "市民要投诉",
};

/** Why the citizen was handed to a person ("原因：…"); an intent the bot recognised is shown by its name. */
export function handoffReasonLabel(reason, intent) {
  if (!reason) return "";
  const known = REASONS[reason] || (intent && REASONS[intent]);
  return `原因：${known || (intent ? `机器人识别为“${intent}”` : reason)}`;
}
