/**
 * tgk-email-orchestrator: email in, Telegram out, legacy router as the safety net.
 *
 *   email()  routes each message (delivery.js) and records tgk_email_* metrics
 *   fetch()  GET /health (version id and flags), POST /telegram/webhook (replies),
 *            POST /selftest (every route's decision, nothing delivered; selftest.js)
 *
 * Metrics are pushed in ctx.waitUntil, after the delivery decision is made.
 */

import { describeFlags, readConfig } from "./config.js";
import { deliver } from "./delivery.js";
import { push, registry, versionOf } from "./metrics.js";
import { handleTelegramUpdate } from "./replies.js";
import { handleSelfTest } from "./selftest.js";

async function handleEmail(message, env, ctx) {
  const started = Date.now();
  const config = readConfig(env);
  let status = "failed";
  try {
    status = await deliver(message, env, config, registry);
  } finally {
    registry.inc("tgk_email_delivery_total", { status });
    registry.observe("tgk_email_routing_duration_seconds", (Date.now() - started) / 1000);
    ctx.waitUntil(push(env, config.environment));
  }
}

function health(env, config) {
  const metadata = env.CF_VERSION_METADATA ?? {};
  return Response.json({
    status: "ok",
    service: "tgk-email-orchestrator",
    environment: config.environment,
    version: { id: versionOf(env), tag: metadata.tag ?? null, timestamp: metadata.timestamp ?? null },
    flags: describeFlags(config),
  });
}

async function handleRequest(request, env, ctx) {
  const config = readConfig(env);
  const { pathname } = new URL(request.url);
  if (request.method === "GET" && pathname === "/health") return health(env, config);
  if (request.method === "POST" && pathname === "/selftest") return handleSelfTest(request, env, config);
  if (request.method === "POST" && pathname === "/telegram/webhook") {
    const response = await handleTelegramUpdate(request, env, config, registry);
    ctx.waitUntil(push(env, config.environment));
    return response;
  }
  return Response.json({ error: "not found" }, { status: 404 });
}

export default {
  async email(message, env, ctx) {
    return handleEmail(message, env, ctx);
  },
  async fetch(request, env, ctx) {
    return handleRequest(request, env, ctx);
  },
};
