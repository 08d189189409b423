/**
 * The Worker's metrics, kept per isolate and pushed after each email.
 *
 * Push format: Prometheus text exposition 0.0.4, POSTed to METRICS_PUSH_URL
 * (a Pushgateway group URL such as `…/metrics/job/tgk-email-orchestrator`, or
 * any collector that takes the text format), bearer METRICS_PUSH_TOKEN if bound.
 * Counters and histograms are cumulative for the life of the isolate; every
 * series carries `version_id` (CF_VERSION_METADATA.id), `environment` and
 * `isolate`, so a collector keeps isolates apart and queries can split by
 * version (CLOUDFLARE-API.md trap 6). The push runs in ctx.waitUntil: it never
 * delays or fails delivery.
 */

const HELP = {
  tgk_email_delivery_total: ["counter", "Emails handled, by outcome (delivered, forwarded_legacy, rejected, failed)"],
  tgk_email_routing_duration_seconds: ["histogram", "Time from receipt to the delivery decision being carried out"],
  tgk_email_ai_processing_seconds: ["histogram", "Time spent on AI analysis, including timeouts"],
  tgk_email_ai_accuracy_ratio: ["gauge", "Mean model-reported sentiment confidence over well-formed analyses"],
  tgk_email_route_failures_total: ["counter", "Routing table or KV lookups that failed"],
  tgk_email_ai_failures_total: ["counter", "AI analyses that failed, by reason"],
  tgk_email_pii_detection_failures_total: ["counter", "Texts that still looked personal after redaction (not sent)"],
  tgk_email_oncall_routing_accuracy_ratio: ["gauge", "Share of on-call lookups that named a reachable responder"],
  tgk_email_external_api_failures_total: ["counter", "Failed calls to external APIs, by api"],
  tgk_email_external_api_requests_total: ["counter", "Calls to external APIs, by api"],
  tgk_email_reply_total: ["counter", "Replies from Telegram to email, by status"],
  tgk_email_reply_auth_failures_total: ["counter", "Replies whose signature did not verify"],
  tgk_email_reply_rate_limited_total: ["counter", "Replies refused by the rate limiter"],
};

const BUCKETS = {
  tgk_email_routing_duration_seconds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  tgk_email_ai_processing_seconds: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30],
};

export const METRIC_NAMES = Object.keys(HELP);

function labelKey(labels) {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

function renderLabels(entries) {
  if (entries.length === 0) return "";
  const escape = (v) => String(v).replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}

/** Cumulative series of one isolate; `common` labels go on every series. */
export class Registry {
  constructor() {
    this.counters = new Map(); // name -> Map(labelKey -> {labels, value})
    this.histograms = new Map(); // name -> {counts[], sum, count}
    this.means = new Map(); // name -> {sum, count}
  }

  inc(name, labels = {}, by = 1) {
    if (!HELP[name]) throw new Error(`unknown metric ${name}`);
    const series = this.counters.get(name) ?? new Map();
    this.counters.set(name, series);
    const key = labelKey(labels);
    const entry = series.get(key) ?? { labels, value: 0 };
    entry.value += by;
    series.set(key, entry);
  }

  observe(name, seconds) {
    const buckets = BUCKETS[name];
    if (!buckets) throw new Error(`unknown histogram ${name}`);
    const h = this.histograms.get(name) ?? { counts: buckets.map(() => 0), sum: 0, count: 0 };
    buckets.forEach((le, i) => {
      if (seconds <= le) h.counts[i] += 1;
    });
    h.sum += seconds;
    h.count += 1;
    this.histograms.set(name, h);
  }

  /** A gauge that is the running mean of the values given (booleans count as 1/0). */
  ratio(name, value) {
    if (!HELP[name]) throw new Error(`unknown metric ${name}`);
    const m = this.means.get(name) ?? { sum: 0, count: 0 };
    m.sum += Number(value);
    m.count += 1;
    this.means.set(name, m);
  }

  /** Prometheus text exposition of everything observed so far. */
  render(common) {
    const base = Object.entries(common);
    const lines = [];
    const head = (name) => {
      const [type, help] = HELP[name];
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    for (const [name, series] of this.counters) {
      head(name);
      for (const { labels, value } of series.values()) {
        lines.push(`${name}${renderLabels([...Object.entries(labels), ...base])} ${value}`);
      }
    }
    for (const [name, h] of this.histograms) {
      head(name);
      BUCKETS[name].forEach((le, i) => {
        lines.push(`${name}_bucket${renderLabels([["le", String(le)], ...base])} ${h.counts[i]}`);
      });
      lines.push(`${name}_bucket${renderLabels([["le", "+Inf"], ...base])} ${h.count}`);
      lines.push(`${name}_sum${renderLabels(base)} ${h.sum}`);
      lines.push(`${name}_count${renderLabels(base)} ${h.count}`);
    }
    for (const [name, m] of this.means) {
      head(name);
      lines.push(`${name}${renderLabels(base)} ${m.count === 0 ? 0 : m.sum / m.count}`);
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

/** POST the current text to METRICS_PUSH_URL; failures are logged, never thrown. */
export async function push(env, environment, reg = registry) {
  const url = env.METRICS_PUSH_URL;
  if (!url) return;
  const headers = { "content-type": "text/plain; version=0.0.4" };
  if (env.METRICS_PUSH_TOKEN) headers.authorization = `Bearer ${env.METRICS_PUSH_TOKEN}`;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: reg.render(commonLabels(env, environment)),
    });
    if (!response.ok) console.warn(`metrics: push answered HTTP ${response.status}`);
  } catch (error) {
    console.warn(`metrics: push failed (${error.message})`);
  }
}
