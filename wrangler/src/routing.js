/**
 * Where an email goes: a Telegram chat, the legacy router, or back to the sender.
 *
 * The routing table is JSON, from the `ROUTING_TABLE` var and, when a KV
 * namespace is bound as `ROUTING_KV`, per-scope overrides under `route:<scope>`:
 *
 *     {"domains": ["tgk.example"],
 *      "routes": {"alerts":  {"chat_id": "-100…", "priority": "critical", "schedule": "sre"},
 *                 "noreply": {"action": "reject", "reason": "…"}},
 *      "people": {"alice": "-100…"}}
 *
 * A tag of `critical` or `urgent` (`alerts+critical@…`) raises the priority.
 * With DYNAMIC_ROUTING on, routes that name a `schedule` ask the schedule API
 * who is on call (all routes, or only critical ones: DYNAMIC_ROUTING_SCOPE) and
 * fall back to the static chat when it fails, is slow, or names someone unknown.
 */

import { parseRecipient } from "./address.js";
import { callJson } from "./deadline.js";

const URGENT_TAGS = new Set(["critical", "urgent"]);

export class RoutingTableError extends Error {
  constructor(message) {
    super(message);
    this.name = "RoutingTableError";
  }
}

/** Parse the ROUTING_TABLE var; an unusable table is an error, never an empty table. */
export function parseTable(raw) {
  if (raw === undefined || raw === null || raw === "") return { domains: [], routes: {}, people: {} };
  let table;
  try {
    table = typeof raw === "string" ? JSON.parse(raw) : raw;
  } catch (error) {
    throw new RoutingTableError(`ROUTING_TABLE is not JSON: ${error.message}`);
  }
  if (typeof table !== "object" || table === null || typeof table.routes !== "object") {
    throw new RoutingTableError("ROUTING_TABLE must be an object with a `routes` object");
  }
  return {
    domains: (table.domains ?? []).map((d) => String(d).toLowerCase()),
    routes: table.routes,
    people: table.people ?? {},
  };
}

async function routeFromKv(env, scope, metrics) {
  if (!env.ROUTING_KV) return null;
  try {
    return await env.ROUTING_KV.get(`route:${scope}`, "json");
  } catch (error) {
    metrics.inc("tgk_email_route_failures_total");
    console.warn(`routing: KV lookup for ${scope} failed (${error.message}); using ROUTING_TABLE`);
    return null;
  }
}

/**
 * Decide the destination of one recipient.
 *
 * Returns {kind: "telegram", chatId, scope, tag, priority, source}
 *       | {kind: "reject", reason, scope}
 *       | {kind: "unknown", reason, degraded}   (forward to legacy; degraded: because
 *                                            something of ours is broken, not by design)
 */
export async function resolveRoute(recipient, env, config, metrics) {
  const parsed = parseRecipient(recipient);
  if (!parsed) return { kind: "unknown", reason: "recipient is not an address" };

  let table;
  try {
    table = parseTable(env.ROUTING_TABLE);
  } catch (error) {
    metrics.inc("tgk_email_route_failures_total");
    console.error(`routing: ${error.message}`);
    return { kind: "unknown", reason: "routing table unusable", scope: parsed.scope, degraded: true };
  }
  if (table.domains.length > 0 && !table.domains.includes(parsed.domain)) {
    return { kind: "unknown", reason: `domain ${parsed.domain} not routed`, scope: parsed.scope };
  }

  const route = (await routeFromKv(env, parsed.scope, metrics)) ?? table.routes[parsed.scope];
  if (!route) return { kind: "unknown", reason: `no route for ${parsed.scope}`, scope: parsed.scope };
  if (route.action === "reject") {
    return { kind: "reject", reason: route.reason ?? "Address does not accept mail", scope: parsed.scope };
  }
  if (!route.chat_id) {
    metrics.inc("tgk_email_route_failures_total");
    return { kind: "unknown", reason: `route ${parsed.scope} has no chat_id`, scope: parsed.scope, degraded: true };
  }

  const priority = URGENT_TAGS.has(parsed.tag) ? "critical" : route.priority ?? "normal";
  const resolved = {
    kind: "telegram",
    chatId: String(route.chat_id),
    scope: parsed.scope,
    tag: parsed.tag,
    priority,
    source: "static",
  };
  if (wantsOnCall(config.dynamicRouting, route, priority)) {
    const onCall = await lookUpOnCall(route.schedule, table.people, config.dynamicRouting, metrics);
    if (onCall) return { ...resolved, chatId: onCall.chatId, onCall: onCall.person, source: "oncall" };
  }
  return resolved;
}

function wantsOnCall(dynamic, route, priority) {
  if (!dynamic.enabled || !route.schedule || !dynamic.scheduleApiUrl) return false;
  return dynamic.scope === "all" || priority === "critical";
}

/**
 * Ask the schedule API who is on call; null means "use the static chat".
 *
 * Each lookup is counted once in tgk_email_oncall_lookups_total by outcome:
 * responder (a chat id, or a person in `people`), unknown, or failed.
 */
async function lookUpOnCall(schedule, people, dynamic, metrics) {
  const url = `${dynamic.scheduleApiUrl}/oncall/${encodeURIComponent(schedule)}`;
  metrics.inc("tgk_email_external_api_requests_total", { api: "schedule" });
  let answer;
  try {
    answer = await callJson(dynamic.timeoutMs, "schedule API", url, {
      headers: { accept: "application/json" },
    });
  } catch (error) {
    metrics.inc("tgk_email_external_api_failures_total", { api: "schedule" });
    metrics.inc("tgk_email_oncall_lookups_total", { outcome: "failed" });
    console.warn(`routing: schedule API failed (${error.message}); static route used`);
    return null;
  }
  if (!answer.ok || !answer.body) {
    metrics.inc("tgk_email_external_api_failures_total", { api: "schedule" });
    metrics.inc("tgk_email_oncall_lookups_total", { outcome: "failed" });
    return null;
  }
  const person = answer.body.user ?? null;
  const chatId = answer.body.chat_id ?? (person ? people[person] : undefined);
  metrics.inc("tgk_email_oncall_lookups_total", { outcome: chatId ? "responder" : "unknown" });
  return chatId ? { chatId: String(chatId), person } : null;
}
