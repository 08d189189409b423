// Test harness: the real Worker modules in Miniflare, fed emails through workerd's
// own email() dispatch, talking to fake Telegram/AI/schedule/metrics servers on 127.0.0.1.
//
// Miniflare 3 has no email endpoint, so a second worker ("dispatcher") holds a
// service binding to the orchestrator and calls `env.ORCHESTRATOR.email(message)`:
// workerd runs the orchestrator's real `email(message, env, ctx)` handler with a
// ForwardableEmailMessage whose forward/setReject/reply are recorded here.
// (Miniflare 4's /cdn-cgi/handler/email does the same thing.)

import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const WRANGLER_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SRC_DIR = path.join(WRANGLER_DIR, "src");

/** compatibility_date from wrangler.toml, so tests run the Worker as it is uploaded. */
export function compatibilityDate() {
  const toml = readFileSync(path.join(WRANGLER_DIR, "wrangler.toml"), "utf8");
  return /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)[1];
}

function workerModules() {
  const names = readdirSync(SRC_DIR).filter((n) => n.endsWith(".js")).sort();
  const ordered = ["index.js", ...names.filter((n) => n !== "index.js")];
  return ordered.map((name) => ({
    type: "ESModule",
    path: path.join(SRC_DIR, name),
    contents: readFileSync(path.join(SRC_DIR, name), "utf8"),
  }));
}

const DISPATCHER = `
export default {
  async fetch(request, env) {
    const { from, to, raw } = await request.json();
    const bytes = new TextEncoder().encode(raw);
    const calls = [];
    const message = {
      from, to,
      raw: new Response(bytes).body,
      rawSize: bytes.byteLength,
      headers: new Headers(),
      setReject(reason) { calls.push({ action: "reject", reason }); },
      async forward(rcptTo, headers) {
        calls.push({ action: "forward", to: rcptTo, headers: headers ? Object.fromEntries(headers) : {} });
      },
      async reply() { calls.push({ action: "reply" }); },
    };
    const started = Date.now();
    try {
      await env.ORCHESTRATOR.email(message);
      return Response.json({ calls, ms: Date.now() - started, error: null });
    } catch (error) {
      return Response.json({ calls, ms: Date.now() - started, error: String(error && error.message || error) });
    }
  },
};`;

/**
 * A fake HTTP server on 127.0.0.1. `routes` maps "METHOD /path-prefix" to a function
 * (request record) -> {status, json, delayMs}; every request is recorded.
 */
export async function startFakeServer(routes = {}) {
  const requests = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      const record = { method: req.method, path: req.url, headers: req.headers, body };
      try {
        record.json = JSON.parse(body);
      } catch {
        record.json = null;
      }
      requests.push(record);
      for (const w of [...waiters]) w();
      const key = Object.keys(routes).find((k) => {
        const [method, prefix] = k.split(" ");
        return method === req.method && req.url.startsWith(prefix);
      });
      const reply = key ? (routes[key](record) ?? {}) : { status: 404, json: { ok: false } };
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      if (res.destroyed) return;
      res.writeHead(reply.status ?? 200, { "content-type": "application/json" });
      res.end(JSON.stringify(reply.json ?? { ok: true }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    requests,
    to(prefix) {
      return requests.filter((r) => r.path.startsWith(prefix));
    },
    /** Resolve once `count` requests to `prefix` have arrived (event-driven, with a cap). */
    async waitFor(prefix, count = 1, capMs = 5000) {
      const deadline = Date.now() + capMs;
      while (this.to(prefix).length < count) {
        if (Date.now() > deadline) throw new Error(`no request to ${prefix} within ${capMs} ms`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
        waiters.length = 0;
      }
      return this.to(prefix);
    },
    /**
     * Resolve with the latest push to `prefix` once every pattern matches it. Pushes of one
     * isolate coalesce (metrics.js), so tests wait for totals, not for a number of pushes.
     */
    async waitForPush(patterns, prefix = "/metrics", capMs = 5000) {
      const deadline = Date.now() + capMs;
      for (;;) {
        const last = this.to(prefix).at(-1);
        if (last && patterns.every((p) => p.test(last.body))) return last;
        if (Date.now() > deadline) {
          throw new Error(`no push to ${prefix} matching ${patterns.join(", ")} within ${capMs} ms:\n${last?.body ?? "(none)"}`);
        }
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
        waiters.length = 0;
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export const TEST_TABLE = {
  domains: ["tgk.test"],
  routes: {
    alerts: { chat_id: "-1001", priority: "critical", schedule: "sre-primary" },
    ops: { chat_id: "-1002", priority: "normal", schedule: "ops" },
    billing: { chat_id: "-1003" },
    noreply: { action: "reject", reason: "This address does not accept mail." },
  },
  people: { alice: "-2001" },
};

/** Vars every test starts from: all flags off, every endpoint on the fake server. */
export function baseVars(fake) {
  return {
    ENVIRONMENT: "test",
    LEGACY_FORWARD_ADDRESS: "legacy@mail.tgk.test",
    ROUTING_TABLE: JSON.stringify(TEST_TABLE),
    TELEGRAM_API_BASE: `${fake.url}/telegram`,
    TELEGRAM_TIMEOUT_MS: "400",
    AI_ANALYSIS: "false",
    AI_API_BASE: `${fake.url}/ai`,
    AI_TIMEOUT_MS: "300",
    DYNAMIC_ROUTING: "false",
    DYNAMIC_ROUTING_SCOPE: "critical",
    SCHEDULE_API_URL: `${fake.url}/schedule`,
    SCHEDULE_TIMEOUT_MS: "300",
    EMAIL_REPLIES: "false",
    EMAIL_REPLIES_PILOT: "false",
    EMAIL_REPLIES_PILOT_USERS: "",
    REPLY_SEND_URL: `${fake.url}/mail/send`,
    REPLY_FROM_ADDRESS: "oncall@tgk.test",
    INTERACTIVE_BUTTONS: "false",
    METRICS_PUSH_URL: `${fake.url}/metrics`,
  };
}

/** The orchestrator in Miniflare with `bindings` (vars and secrets) and a version id. */
export async function startWorker(bindings, { versionId = "00000000-test-version", kv = null } = {}) {
  const mf = new Miniflare({
    workers: [
      {
        name: "dispatcher",
        modules: true,
        script: DISPATCHER,
        compatibilityDate: compatibilityDate(),
        compatibilityFlags: ["service_binding_extra_handlers"],
        serviceBindings: { ORCHESTRATOR: "tgk-email-orchestrator" },
      },
      {
        name: "tgk-email-orchestrator",
        modules: workerModules(),
        compatibilityDate: compatibilityDate(),
        ...(kv ? { kvNamespaces: ["ROUTING_KV"] } : {}),
        bindings: {
          ...bindings,
          CF_VERSION_METADATA: { id: versionId, tag: "test", timestamp: "2026-11-28T00:00:00Z" },
        },
      },
    ],
  });
  await mf.ready;
  if (kv) {
    const namespace = await mf.getKVNamespace("ROUTING_KV", "tgk-email-orchestrator");
    for (const [key, value] of Object.entries(kv)) await namespace.put(key, JSON.stringify(value));
  }
  const orchestrator = await mf.getWorker("tgk-email-orchestrator");
  return {
    /** Deliver one email through email(); resolves to {calls, ms, error}. */
    async email({
      from = "Jane Doe <jane@example.org>",
      to,
      subject = "Disk full",
      body = "The disk is full.",
      contentType = "text/plain; charset=utf-8",
    }) {
      const raw = [
        `From: ${from}`,
        `To: ${to}`,
        `Subject: ${subject}`,
        "Message-ID: <test@example.org>",
        `Content-Type: ${contentType}`,
        "",
        body,
      ].join("\r\n");
      const sender = /<([^>]+)>/.exec(from)?.[1] ?? from;
      const response = await mf.dispatchFetch("http://dispatcher/", {
        method: "POST",
        body: JSON.stringify({ from: sender, to, raw }),
      });
      return response.json();
    },
    fetch(pathname, init) {
      return orchestrator.fetch(`http://worker${pathname}`, init);
    },
    dispose: () => mf.dispose(),
  };
}

/** Telegram fake that accepts every message. */
export const telegramOk = () => ({ status: 200, json: { ok: true, result: { message_id: 1 } } });
