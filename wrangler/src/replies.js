/**
 * Replying to an email from Telegram (EMAIL_REPLIES).
 *
 * Each notification carries `ref: <token>`, an HMAC (REPLY_SIGNING_SECRET) of
 * the chat, sender and subject. Telegram posts a reply to that notification to
 * POST /telegram/webhook; the Worker checks the token (tgk_email_webhook_auth_failures_total: anyone can
 * raise it, so it is alerted on but never rolls back),
 * the pilot list when EMAIL_REPLIES_PILOT is on (EMAIL_REPLIES_PILOT_USERS,
 * Telegram user ids), a per-user rate limit (tgk_email_reply_rate_limited_total),
 * then sends the mail through the HTTP mail API at REPLY_SEND_URL
 * (tgk_email_reply_total{status="sent"|"failed"}).
 */

import { callJson } from "./deadline.js";

const REPLY_TIMEOUT_MS = 5000;
const WINDOW_MS = 60_000;
const recentReplies = new Map(); // user id -> timestamps within the window (per isolate)

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** The reply token for a notification sent to `chatId` about mail from `sender` on `subject`. */
export async function signReply(secret, chatId, sender, subject) {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${chatId}\n${sender}\n${subject}`));
  return base64url(mac).slice(0, 22);
}

function timingSafeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Sender, subject and token from the plain text of a notification (see telegram.js). */
export function readNotification(text) {
  const lines = String(text ?? "").split("\n");
  const subject = /^\S+ \[[^\]]+\] (.*)$/.exec(lines[0] ?? "")?.[1];
  const sender = lines.find((l) => l.startsWith("From: "))?.slice(6);
  const ref = lines.findLast((l) => l.startsWith("ref: "))?.slice(5);
  if (subject === undefined || !sender || !ref) return null;
  return { subject, sender, ref };
}

function addressOf(sender) {
  return /<([^>]+)>/.exec(sender)?.[1] ?? sender.trim();
}

function rateLimited(userId, perMinute, now) {
  const recent = (recentReplies.get(userId) ?? []).filter((t) => now - t < WINDOW_MS);
  if (recent.length >= perMinute) {
    recentReplies.set(userId, recent);
    return true;
  }
  recent.push(now);
  recentReplies.set(userId, recent);
  return false;
}

const answer = (status, body) => Response.json(body, { status });

/** Handle one Telegram update; returns the HTTP response for Telegram. */
export async function handleTelegramUpdate(request, env, config, metrics) {
  if (!config.replies.enabled) return answer(404, { error: "email replies are off" });
  if (env.TELEGRAM_WEBHOOK_SECRET &&
      request.headers.get("x-telegram-bot-api-secret-token") !== env.TELEGRAM_WEBHOOK_SECRET) {
    metrics.inc("tgk_email_webhook_auth_failures_total", { reason: "bad_secret" });
    return answer(401, { error: "bad webhook secret" });
  }
  let update;
  try {
    update = await request.json();
  } catch {
    return answer(400, { error: "not JSON" });
  }
  const message = update?.message;
  const original = message?.reply_to_message;
  if (!message?.text || !original) return answer(200, { status: "ignored" });

  const notification = readNotification(original.text);
  if (!notification) return answer(200, { status: "ignored" });
  const expected = env.REPLY_SIGNING_SECRET
    ? await signReply(env.REPLY_SIGNING_SECRET, String(message.chat?.id), notification.sender, notification.subject)
    : null;
  if (!expected || !timingSafeEqual(expected, notification.ref)) {
    metrics.inc("tgk_email_webhook_auth_failures_total", { reason: "bad_signature" });
    return answer(403, { error: "reply signature does not verify" });
  }

  const userId = String(message.from?.id ?? "");
  if (config.replies.pilot && !config.replies.pilotUsers.includes(userId)) {
    return answer(403, { status: "not_in_pilot" });
  }
  if (rateLimited(userId, config.replies.ratePerMinute, Date.now())) {
    metrics.inc("tgk_email_reply_rate_limited_total");
    return answer(429, { status: "rate_limited" });
  }

  const sent = await sendReply(
    {
      from: config.replies.fromAddress,
      to: addressOf(notification.sender),
      subject: notification.subject.startsWith("Re:") ? notification.subject : `Re: ${notification.subject}`,
      text: message.text,
    },
    env,
    config,
    metrics,
  );
  metrics.inc("tgk_email_reply_total", { status: sent ? "sent" : "failed" });
  return answer(sent ? 200 : 502, { status: sent ? "sent" : "failed" });
}

async function sendReply(mail, env, config, metrics) {
  if (!config.replies.sendUrl) return false;
  metrics.inc("tgk_email_external_api_requests_total", { api: "reply_mail" });
  const headers = { "content-type": "application/json" };
  if (env.REPLY_SEND_TOKEN) headers.authorization = `Bearer ${env.REPLY_SEND_TOKEN}`;
  try {
    const result = await callJson(REPLY_TIMEOUT_MS, "reply mail API", config.replies.sendUrl, {
      method: "POST",
      headers,
      body: JSON.stringify(mail),
    });
    if (result.ok) return true;
  } catch (error) {
    console.warn(`replies: mail API failed (${error.message})`);
  }
  metrics.inc("tgk_email_external_api_failures_total", { api: "reply_mail" });
  return false;
}
