/**
 * The Telegram side: what a notification looks like, and posting it.
 *
 * The bot token sits in the request path (Bot API convention), so no error or
 * log line here ever includes the URL.
 */

import { callJson, DeadlineExceeded } from "./deadline.js";

const MAX_BODY_CHARS = 2500; // after escaping: the whole message must stay under Telegram's 4096

export class TelegramFailed extends Error {
  constructor(reason) {
    super(`Telegram delivery failed: ${reason}`);
    this.name = "TelegramFailed";
    this.reason = reason;
  }
}

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>]/g, (c) => ENTITIES[c]);
}

/** Escape `text` and cut it to at most `max` characters of HTML, never inside an entity. */
export function escapeWithin(text, max) {
  let out = "";
  for (const char of String(text)) {
    const piece = ENTITIES[char] ?? char;
    if (out.length + piece.length > max - 1) return `${out}…`;
    out += piece;
  }
  return out;
}

const PRIORITY_MARK = { critical: "🔴", high: "🟠", normal: "🔵", low: "⚪" };

/** The HTML text of one notification. `replyRef` is the signed reply token, if replies are on. */
export function formatNotification({ email, route, recipient, sender, analysis, replyRef }) {
  const lines = [
    `${PRIORITY_MARK[route.priority] ?? "🔵"} <b>[${escapeHtml(route.scope)}]</b> ${escapeHtml(email.subject)}`,
    `From: ${escapeHtml(sender)}`,
    `To: ${escapeHtml(recipient)}`,
  ];
  if (route.onCall) lines.push(`On call: ${escapeHtml(route.onCall)}`);
  lines.push("", escapeWithin(email.text, MAX_BODY_CHARS));
  if (analysis) {
    lines.push(
      "",
      `🤖 ${escapeHtml(analysis.sentiment)} · ${escapeHtml(analysis.urgency)} urgency — ${escapeHtml(analysis.summary)}`,
    );
  }
  if (replyRef) lines.push("", `ref: ${replyRef}`);
  return lines.join("\n");
}

/** Inline keyboard: reply button (EMAIL_REPLIES) and ack/escalate (INTERACTIVE_BUTTONS). */
export function keyboardFor(config, replyRef) {
  const row = [];
  if (config.replies.enabled && replyRef) row.push({ text: "✉️ Reply by email", callback_data: "reply" });
  if (config.interactiveButtons) {
    row.push({ text: "✅ Ack", callback_data: "ack" }, { text: "⏫ Escalate", callback_data: "escalate" });
  }
  return row.length > 0 ? { inline_keyboard: [row] } : undefined;
}

/** Bot API call; resolves to the result or throws TelegramFailed. */
export async function callBot(method, payload, env, config, metrics) {
  if (!env.TELEGRAM_BOT_TOKEN) throw new TelegramFailed("TELEGRAM_BOT_TOKEN is not bound");
  const url = `${config.telegram.apiBase}/bot${env.TELEGRAM_BOT_TOKEN}/${method}`;
  metrics.inc("tgk_email_external_api_requests_total", { api: "telegram" });
  let answer;
  try {
    answer = await callJson(config.telegram.timeoutMs, "Telegram", url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
    });
  } catch (error) {
    metrics.inc("tgk_email_external_api_failures_total", { api: "telegram" });
    throw new TelegramFailed(error instanceof DeadlineExceeded ? "timeout" : "network error");
  }
  if (!answer.ok || !answer.body?.ok) {
    metrics.inc("tgk_email_external_api_failures_total", { api: "telegram" });
    throw new TelegramFailed(`HTTP ${answer.status}${answer.body?.description ? `: ${answer.body.description}` : ""}`);
  }
  return answer.body.result;
}

export function sendNotification(chatId, text, keyboard, env, config, metrics) {
  return callBot(
    "sendMessage",
    {
      chat_id: chatId,
      text,
      parse_mode: "HTML",
      disable_web_page_preview: true,
      ...(keyboard ? { reply_markup: keyboard } : {}),
    },
    env,
    config,
    metrics,
  );
}
