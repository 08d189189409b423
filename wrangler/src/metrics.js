/**
 * The Worker's metrics: cumulative per isolate, pushed to a Pushgateway group of its own.
 *
 * Push: Prometheus text exposition 0.0.4, POSTed to
 *   METRICS_PUSH_URL/version_id/<id>/environment/<env>/isolate/<isolate>
 * (METRICS_PUSH_URL is a Pushgateway job URL, `…/metrics/job/tgk-email-orchestrator`),
 * bearer METRICS_PUSH_TOKEN if bound, after every email and webhook call, in
 * ctx.waitUntil: it never delays or fails delivery.
 *
 * Why every event counts, a fresh isolate's first one included:
 * - each isolate is its own group, so its series are its own and never reset
 *   (an isolate's counts only grow; a new isolate is a new series);
 * - every counter below is rendered from the first push with all its known
 *   label values, at zero where nothing happened yet;
 * - the queries in phases/*.yaml count the events of a window as
 *   `sum((x - x offset W) or x)`: the exact difference for series that existed
 *   W ago, plus the whole value of series born inside the window. A series born
 *   at 1 therefore counts 1, and no extrapolation turns 5 into 5.045
 *   (`increase()` would do both wrong).
 * - pushes of one isolate never overtake each other (one in flight, the next
 *   carries everything since), so a group's values never go backwards; a
 *   failed push is made good by the next one, which carries the totals.
 *
 * Every series carries `version_id` (CF_VERSION_METADATA.id), `environment`
 * and `isolate`. Metrics marked CALLER_RAISABLE can be raised by anyone who can
 * reach the Worker's URL; the phase files alert on them but never roll back on them.
 */

/** name -> [type, help, {label: known values}]; the registry of every metric the Worker emits. */
export const HELP = {
  tgk_email_delivery_total: ["counter", "Emails handled, by status: delivered (to Telegram), fallback (forwarded to legacy because something failed), unrouted (forwarded to legacy by design: no route), bridged (forwarded unchanged to legacy: LEGACY_BRIDGE, the existing system's path), rejected (by the routing table, by design), failed (not handled; the sender retries)", { status: ["delivered", "fallback", "unrouted", "bridged", "rejected", "failed"] }],
  tgk_email_routing_duration_seconds: ["histogram", "Time from receipt to the delivery decision being carried out", {}],
  tgk_email_route_failures_total: ["counter", "Routing table, route or KV lookups that failed", {}],
  tgk_email_ai_requests_total: ["counter", "AI analyses attempted (calls to the AI service)", {}],
  tgk_email_ai_failures_total: ["counter", "AI analyses that failed, by reason (timeout: AI_TIMEOUT_MS reached)", { reason: ["timeout", "network", "http_error", "bad_response"] }],
  tgk_email_ai_processing_seconds: ["histogram", "Duration of AI calls, timeouts included (observed at the timeout)", {}],
  tgk_email_ai_confidence: ["histogram", "Model-reported confidence of well-formed analyses (self-reported, not labelled accuracy)", {}],
  tgk_email_pii_blocked_total: ["counter", "Texts the second PII look caught after redaction; they were not sent to the AI service", {}],
  tgk_email_oncall_lookups_total: ["counter", "On-call lookups, by outcome: responder (a reachable chat), unknown (no chat for whoever is on call), failed (the schedule API failed or timed out)", { outcome: ["responder", "unknown", "failed"] }],
  tgk_email_external_api_requests_total: ["counter", "Calls to external APIs, by api", { api: ["telegram", "openai", "schedule", "reply_mail"] }],
  tgk_email_external_api_failures_total: ["counter", "Failed calls to external APIs, by api", { api: ["telegram", "openai", "schedule", "reply_mail"] }],
  tgk_email_reply_total: ["counter", "Signed replies from Telegram to email, by status", { status: ["sent", "failed"] }],
  tgk_email_webhook_auth_failures_total: ["counter", "CALLER_RAISABLE: webhook posts refused, by reason (bad_secret: wrong webhook secret; bad_signature: reply ref does not verify)", { reason: ["bad_secret", "bad_signature"] }],
  tgk_email_reply_rate_limited_total: ["counter", "CALLER_RAISABLE: replies refused by the per-user rate limiter", {}],
};

const BUCKETS = {
  tgk_email_routing_duration_seconds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10],
  tgk_email_ai_processing_seconds: [0.1, 0.25, 0.5, 1, 2, 2.5, 3, 3.5, 5, 10, 30],
  tgk_email_ai_confidence: [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1],
};

export const METRIC_NAMES = Object.keys(HELP);
/** Metrics an unauthenticated caller can raise: never a reason to roll back. */
export const CALLER_RAISABLE = METRIC_NAMES.filter((name) => HELP[name][1].startsWith("CALLER_RAISABLE"));

function labelKey(labels) {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

function renderLabels(entries) {
  if (entries.length === 0) return "";
  const escape = (v) => String(v).replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}

/** Every label combination a counter is born with, at zero (one empty set when unlabelled). */
function knownLabelSets(name) {
  let sets = [{}];
  for (const [label, values] of Object.entries(HELP[name][2])) {
    sets = sets.flatMap((set) => values.map((value) => ({ ...set, [label]: value })));
  }
  return sets;
}

/** Cumulative series of one isolate; every counter exists (at zero) from the start. */
export class Registry {
  constructor() {
    this.counters = new Map(); // name -> Map(labelKey -> {labels, value})
    this.histograms = new Map(); // name -> {counts[], sum, count}
    for (const [name, [type]] of Object.entries(HELP)) {
      if (type === "counter") {
        const series = new Map();
        for (const labels of knownLabelSets(name)) series.set(labelKey(labels), { labels, value: 0 });
        this.counters.set(name, series);
      } else {
        this.histograms.set(name, { counts: BUCKETS[name].map(() => 0), sum: 0, count: 0 });
      }
    }
  }

  inc(name, labels = {}, by = 1) {
    const series = this.counters.get(name);
    if (!series) throw new Error(`unknown counter ${name}`);
    const key = labelKey(labels);
    const entry = series.get(key) ?? { labels, value: 0 };
    entry.value += by;
    series.set(key, entry);
  }

  observe(name, value) {
    const h = this.histograms.get(name);
    if (!h) throw new Error(`unknown histogram ${name}`);
    BUCKETS[name].forEach((le, i) => {
      if (value <= le) h.counts[i] += 1;
    });
    h.sum += value;
    h.count += 1;
  }

  /** Prometheus text exposition of everything observed so far. */
  render(common) {
    const base = Object.entries(common);
    const lines = [];
    for (const [name, [type, help]] of Object.entries(HELP)) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      if (type === "counter") {
        for (const { labels, value } of this.counters.get(name).values()) {
          lines.push(`${name}${renderLabels([...Object.entries(labels), ...base])} ${value}`);
        }
        continue;
      }
      const h = this.histograms.get(name);
      BUCKETS[name].forEach((le, i) => {
        lines.push(`${name}_bucket${renderLabels([["le", String(le)], ...base])} ${h.counts[i]}`);
      });
      lines.push(`${name}_bucket${renderLabels([["le", "+Inf"], ...base])} ${h.count}`);
      lines.push(`${name}_sum${renderLabels(base)} ${h.sum}`);
      lines.push(`${name}_count${renderLabels(base)} ${h.count}`);
    }
    return `${lines.join("\n")}\n`;
  }
}

/** One registry per isolate: module state lives as long as the isolate does. */
export const registry = new Registry();
let isolate = null;

/** Random ids may only be made inside a request in workerd, hence lazily. */
export function isolateId() {
  isolate ??= crypto.randomUUID().slice(0, 8);
  return isolate;
}

export function versionOf(env) {
  return env.CF_VERSION_METADATA?.id || "unknown";
}

export function commonLabels(env, environment) {
  return { version_id: versionOf(env), environment, isolate: isolateId() };
}

/** Pushgateway grouping-key path: /label/value, base64url (`label@base64/…`) when a value has a slash. */
export function groupPath(labels) {
  return Object.entries(labels)
    .map(([label, value]) => {
      const text = String(value);
      if (text !== "" && !text.includes("/")) return `/${label}/${encodeURIComponent(text)}`;
      const encoded = btoa(String.fromCharCode(...new TextEncoder().encode(text)))
        .replace(/\+/g, "-")
        .replace(/\//g, "_");
      return `/${label}@base64/${encoded || "="}`;
    })
    .join("");
}

async function sendOnce(env, environment, reg) {
  const labels = commonLabels(env, environment);
  const headers = { "content-type": "text/plain; version=0.0.4" };
  if (env.METRICS_PUSH_TOKEN) headers.authorization = `Bearer ${env.METRICS_PUSH_TOKEN}`;
  try {
    const response = await fetch(`${env.METRICS_PUSH_URL.replace(/\/+$/, "")}${groupPath(labels)}`, {
      method: "POST",
      headers,
      body: reg.render(labels),
    });
    if (!response.ok) console.warn(`metrics: push answered HTTP ${response.status}`);
    await response.body?.cancel();
  } catch (error) {
    console.warn(`metrics: push failed (${error.message})`);
  }
}

const pushes = new WeakMap(); // registry -> {inflight, again}

/**
 * Push the registry's current totals; failures are logged, never thrown.
 *
 * At most one push per registry is in flight: a push asked for meanwhile is
 * folded into one more push after it, which renders the totals at that time.
 * Values in the group therefore never go backwards, and every caller's promise
 * (its ctx.waitUntil) resolves only once its events have been sent.
 */
export function push(env, environment, reg = registry) {
  if (!env.METRICS_PUSH_URL) return Promise.resolve();
  const state = pushes.get(reg) ?? { inflight: null, again: false };
  pushes.set(reg, state);
  if (state.inflight) {
    state.again = true;
    return state.inflight;
  }
  state.inflight = (async () => {
    try {
      do {
        state.again = false;
        await sendOnce(env, environment, reg);
      } while (state.again);
    } finally {
      state.inflight = null;
    }
  })();
  return state.inflight;
}
