/**
 * POST /selftest: the routing decision for every domain and scope of the routing
 * table, made as email() makes it, with nothing delivered: no Telegram post, no
 * forward, no reject, no metric pushed. `tgk-deploy smoke` calls it on a candidate
 * version (Cloudflare-Workers-Version-Overrides) before that version gets traffic.
 *
 * Not an oracle of the routing table: without the SMOKE_TOKEN secret bound the
 * path does not exist (404, as any unknown path); a missing or wrong bearer token
 * gets 401 and nothing else; the answer names scopes and decisions, never a chat
 * id or an address mail is sent to.
 *
 * A route passes when mail to it would go where the table means it to go:
 *   - a Telegram route: a chat id Telegram accepts (an integer, or @channel);
 *   - a reject route: rejected;
 *   - in bridge mode (LEGACY_BRIDGE): every message forwarded to the legacy router,
 *     which needs LEGACY_FORWARD_ADDRESS.
 * It fails when the table names a handler the Worker does not have (`action`),
 * a scope no address reaches (upper case, a `+`, blanks), a priority it does not
 * know, a route with nowhere to send to, or when the table itself is unusable.
 * On-call lookups (DYNAMIC_ROUTING) are not made: the static route is what mail
 * falls back to, and the schedule API has triggers of its own.
 */

import { parseRecipient } from "./address.js";
import { Registry, versionOf } from "./metrics.js";
import { parseTable, resolveRoute } from "./routing.js";

const ACTIONS = new Set([undefined, null, "telegram", "reject"]);
const PRIORITIES = new Set([undefined, null, "critical", "normal"]);
const CHAT_ID = /^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$/;
const ANY_DOMAIN = "any-domain.invalid"; // a table without `domains` routes every domain

async function digest(text) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Compare two secrets in constant time: equal-length digests, every byte looked at. */
export async function sameSecret(given, expected) {
  const [a, b] = await Promise.all([digest(String(given)), digest(String(expected))]);
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= a[i] ^ b[i];
  return difference === 0;
}

function bearer(request) {
  const header = request.headers.get("authorization") ?? "";
  return header.startsWith("Bearer ") ? header.slice("Bearer ".length) : null;
}

/** Why a table entry is wrong before any mail is sent to it; null when it is well-formed. */
function entryProblem(scope, route) {
  const parsed = parseRecipient(`${scope}@${ANY_DOMAIN}`);
  if (!parsed || parsed.scope !== scope || parsed.tag !== null) {
    return "no address reaches this scope (scopes are lower case, without + or blanks)";
  }
  if (typeof route !== "object" || route === null) return "the route is not an object";
  if (!ACTIONS.has(route.action)) return `unknown action ${JSON.stringify(String(route.action))}`;
  if (!PRIORITIES.has(route.priority)) return `unknown priority ${JSON.stringify(String(route.priority))}`;
  return null;
}

/** One route, one domain: the decision email() would make, and whether it is the right one. */
async function checkRoute(env, config, scope, domain, route) {
  const result = { scope, domain, decision: null, ok: false };
  const problem = entryProblem(scope, route);
  if (problem) return { ...result, reason: problem };
  if (config.legacyBridge) {
    const ok = Boolean(config.legacyForwardAddress);
    return { ...result, decision: "bridge", ok, ...(ok ? {} : { reason: "LEGACY_FORWARD_ADDRESS is not set" }) };
  }
  const scratch = new Registry(); // the self-test never counts as mail
  const staticOnly = { ...config, dynamicRouting: { ...config.dynamicRouting, enabled: false } };
  const decided = await resolveRoute(`${scope}@${domain}`, env, staticOnly, scratch);
  const decision = { telegram: "telegram", reject: "reject", unknown: "legacy" }[decided.kind] ?? decided.kind;
  const wanted = route.action === "reject" ? "reject" : "telegram";
  if (decision !== wanted) {
    return { ...result, decision, reason: `mail would go to ${decision}, not ${wanted}: ${decided.reason ?? "no reason given"}` };
  }
  if (decision === "telegram" && !CHAT_ID.test(decided.chatId)) {
    return { ...result, decision, reason: "the chat id is not one Telegram accepts (an integer or @channel)" };
  }
  return { ...result, decision, ok: true, ...(decided.priority ? { priority: decided.priority } : {}) };
}

/** The whole table, every domain; an unusable table is one failed entry, not an empty pass. */
export async function selfTest(env, config) {
  let table;
  try {
    table = parseTable(env.ROUTING_TABLE);
  } catch {
    // never the parser's message: it may quote the table
    return [{ scope: null, domain: null, decision: null, ok: false, reason: "ROUTING_TABLE is not usable JSON with a routes object" }];
  }
  const scopes = Object.keys(table.routes);
  if (scopes.length === 0) {
    return [{ scope: null, domain: null, decision: null, ok: false, reason: "the routing table has no routes" }];
  }
  const domains = table.domains.length > 0 ? table.domains : [ANY_DOMAIN];
  const checks = [];
  for (const domain of domains) {
    for (const scope of scopes) checks.push(checkRoute(env, config, scope, domain, table.routes[scope]));
  }
  return Promise.all(checks);
}

/** The fetch handler's side: token first, then the report. */
export async function handleSelfTest(request, env, config) {
  if (!env.SMOKE_TOKEN) return Response.json({ error: "not found" }, { status: 404 });
  const given = bearer(request);
  if (given === null || !(await sameSecret(given, env.SMOKE_TOKEN))) {
    return Response.json({ error: "unauthorized" }, { status: 401, headers: { "www-authenticate": "Bearer" } });
  }
  const routes = await selfTest(env, config);
  const failed = routes.filter((r) => !r.ok).length;
  return Response.json(
    {
      service: "tgk-email-orchestrator",
      environment: config.environment,
      version: { id: versionOf(env) },
      bridge: config.legacyBridge,
      ok: failed === 0,
      checked: routes.length,
      failed,
      routes,
    },
    { headers: { "cache-control": "no-store" } },
  );
}
