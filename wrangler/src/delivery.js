/**
 * One email, start to finish: route it, describe it, deliver it, and when
 * anything on the Telegram side fails, forward it to the legacy router.
 * No email is dropped silently: it is delivered, forwarded, rejected because
 * the routing table says so, or the handler throws (the sending server then
 * sees a temporary failure and retries).
 */

import { analyse } from "./ai.js";
import { parseEmail, readRaw } from "./mime.js";
import { signReply } from "./replies.js";
import { resolveRoute } from "./routing.js";
import { formatNotification, keyboardFor, sendNotification, TelegramFailed } from "./telegram.js";

export class UndeliverableError extends Error {
  constructor(message) {
    super(message);
    this.name = "UndeliverableError";
  }
}

/**
 * Forward the original message to LEGACY_FORWARD_ADDRESS; resolves to `status`:
 * "fallback" when something failed (a degradation that counts against the
 * Worker), "unrouted" when the table routes the address nowhere (by design).
 * The reason travels in an X- header so the legacy side can count fallbacks.
 */
export async function forwardToLegacy(message, config, reason, status = "fallback") {
  if (!config.legacyForwardAddress) {
    throw new UndeliverableError(`cannot fall back (${reason}): LEGACY_FORWARD_ADDRESS is not set`);
  }
  console.warn(`delivery: forwarding to legacy router: ${reason}`);
  // Header values must be printable ASCII; the reason may quote a remote error message.
  const header = String(reason).replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
  await message.forward(config.legacyForwardAddress, new Headers({ "X-TGK-Fallback-Reason": header }));
  return status;
}

/**
 * LEGACY_BRIDGE: the existing system's path, through the Worker. Every message is
 * forwarded, unchanged (no header added), to the legacy router, so mail goes where
 * it went before the rollout while the Worker counts it. Phase 1 runs this version
 * at 100 % first, then splits it against the orchestrator (90 % / 10 %).
 */
async function bridgeToLegacy(message, config) {
  if (!config.legacyForwardAddress) {
    throw new UndeliverableError("bridge mode: LEGACY_FORWARD_ADDRESS is not set");
  }
  await message.forward(config.legacyForwardAddress);
  return "bridged";
}

/** Deliver one message; resolves to its tgk_email_delivery_total status (metrics.js). */
export async function deliver(message, env, config, metrics) {
  if (config.legacyBridge) return bridgeToLegacy(message, config);
  let route;
  try {
    route = await resolveRoute(message.to, env, config, metrics);
  } catch (error) {
    metrics.inc("tgk_email_route_failures_total");
    console.error(`routing: ${error.stack ?? error}`);
    return forwardToLegacy(message, config, "worker error: routing");
  }

  if (route.kind === "reject") {
    // setReject is synchronous on Cloudflare; awaiting its result costs nothing there and
    // lets a message handed over a service binding (Miniflare tests) finish the call.
    await message.setReject(route.reason);
    return "rejected";
  }
  if (route.kind === "unknown") {
    return forwardToLegacy(message, config, route.reason, route.degraded ? "fallback" : "unrouted");
  }

  try {
    const email = parseEmail(await readRaw(message.raw), message.headers);
    const sender = email.from || message.from;
    const analysis = await analyse(email, config, env, metrics);
    const replyRef =
      config.replies.enabled && env.REPLY_SIGNING_SECRET
        ? await signReply(env.REPLY_SIGNING_SECRET, route.chatId, sender, email.subject)
        : null;
    const text = formatNotification({ email, route, recipient: message.to, sender, analysis, replyRef });
    await sendNotification(route.chatId, text, keyboardFor(config, replyRef), env, config, metrics);
    return "delivered";
  } catch (error) {
    if (error instanceof TelegramFailed) return forwardToLegacy(message, config, error.reason);
    // A bug of ours must cost the Telegram message, never the email.
    console.error(`delivery: ${error.stack ?? error}`);
    return forwardToLegacy(message, config, `worker error: ${error.name ?? "Error"}`);
  }
}
