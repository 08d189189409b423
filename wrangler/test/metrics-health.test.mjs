// Metrics carry the running version id and never hold up delivery; /health tells what runs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { baseVars, startFakeServer, startWorker, telegramOk } from "./harness.mjs";

const SECRETS = { TELEGRAM_BOT_TOKEN: "123:test-token" };

describe("metrics", () => {
  it("every series is labelled with the version id from CF_VERSION_METADATA, and pushed to its isolate's group", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /metrics": () => ({ status: 200 }) });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS }, { versionId: "7c1a2b3c-candidate" });
    try {
      await worker.email({ to: "alerts@tgk.test" });
      await worker.email({ to: "nobody@tgk.test" });
      await worker.email({ to: "noreply@tgk.test" });
      const push = await fake.waitForPush([/^tgk_email_routing_duration_seconds_count\{.*\} 3$/m]);
      assert.equal(push.headers["content-type"], "text/plain; version=0.0.4");
      assert.match(push.path, /^\/metrics\/version_id\/7c1a2b3c-candidate\/environment\/test\/isolate\/[0-9a-f]{8}$/);
      const isolate = /isolate\/([0-9a-f]{8})$/.exec(push.path)[1];
      const samples = push.body.split("\n").filter((l) => l && !l.startsWith("#"));
      assert.ok(samples.length > 10);
      for (const sample of samples) {
        assert.match(sample, /version_id="7c1a2b3c-candidate",environment="test",isolate="[0-9a-f]{8}"/, sample);
        assert.ok(sample.includes(`isolate="${isolate}"`), sample);
      }
      assert.match(push.body, /^tgk_email_delivery_total\{status="delivered",version_id="7c1a2b3c-candidate",environment="test",isolate="[0-9a-f]{8}"\} 1$/m);
      // an address the table does not route is forwarded by design: not a fallback
      assert.match(push.body, /^tgk_email_delivery_total\{status="unrouted",.*\} 1$/m);
      assert.match(push.body, /^tgk_email_delivery_total\{status="rejected",.*\} 1$/m);
      assert.match(push.body, /^tgk_email_delivery_total\{status="fallback",.*\} 0$/m);
      assert.match(push.body, /^tgk_email_delivery_total\{status="failed",.*\} 0$/m);
      assert.match(push.body, /^tgk_email_routing_duration_seconds_bucket\{le="\+Inf",.*\} 3$/m);
      assert.match(push.body, /^# TYPE tgk_email_routing_duration_seconds histogram$/m);
      assert.match(push.body, /^tgk_email_external_api_requests_total\{api="telegram",.*\} 1$/m);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });

  it("a fresh isolate's first push already holds every counter, at zero where nothing happened", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /metrics": () => ({ status: 200 }) });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS });
    try {
      await worker.email({ to: "alerts@tgk.test" });
      const [first] = await fake.waitFor("/metrics", 1);
      for (const status of ["delivered", "fallback", "unrouted", "rejected", "failed"]) {
        assert.match(first.body, new RegExp(`^tgk_email_delivery_total\\{status="${status}",`, "m"));
      }
      for (const name of ["tgk_email_route_failures_total", "tgk_email_pii_blocked_total", "tgk_email_webhook_auth_failures_total"]) {
        assert.match(first.body, new RegExp(`^${name}\\{.*\\} 0$`, "m"));
      }
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });

  it("pushes of one isolate never go backwards, however many events overlap", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /metrics": () => ({ status: 200, delayMs: 30 }) });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS });
    try {
      await Promise.all(Array.from({ length: 25 }, () => worker.email({ to: "alerts@tgk.test" })));
      await fake.waitForPush([/^tgk_email_delivery_total\{status="delivered",.*\} 25$/m]);
      const seen = fake.to("/metrics").map((r) => Number(/^tgk_email_delivery_total\{status="delivered",.*\} (\d+)$/m.exec(r.body)[1]));
      assert.deepEqual(seen, [...seen].sort((a, b) => a - b), `pushes went backwards: ${seen}`);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });

  it("a slow metrics endpoint does not delay delivery (the push runs in waitUntil)", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /metrics": () => ({ status: 200, delayMs: 1500 }) });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS });
    try {
      const result = await worker.email({ to: "alerts@tgk.test" });
      assert.deepEqual(result.calls, []);
      assert.ok(result.ms < 700, `handler took ${result.ms} ms; the metrics endpoint takes 1500 ms`);
      await fake.waitFor("/metrics");
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });

  it("a metrics endpoint that is down does not break delivery", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS, METRICS_PUSH_URL: "http://127.0.0.1:9/metrics" });
    try {
      const result = await worker.email({ to: "alerts@tgk.test" });
      assert.equal(result.error, null);
      assert.deepEqual(result.calls, []);
      assert.equal(fake.to("/telegram").length, 1);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});

describe("GET /health", () => {
  it("reports the version id and the effective flags, and no secret", async () => {
    const fake = await startFakeServer({});
    const worker = await startWorker(
      { ...baseVars(fake), ...SECRETS, AI_ANALYSIS: "true", DYNAMIC_ROUTING: "true", DYNAMIC_ROUTING_SCOPE: "all" },
      { versionId: "7c1a2b3c-candidate" },
    );
    try {
      const response = await worker.fetch("/health");
      assert.equal(response.status, 200);
      const body = await response.json();
      assert.deepEqual(body, {
        status: "ok",
        service: "tgk-email-orchestrator",
        environment: "test",
        version: { id: "7c1a2b3c-candidate", tag: "test", timestamp: "2026-11-28T00:00:00Z" },
        flags: {
          LEGACY_BRIDGE: false,
          AI_ANALYSIS: true,
          ai_active: false,
          OPENAI_API_KEY_bound: false,
          DYNAMIC_ROUTING: true,
          DYNAMIC_ROUTING_SCOPE: "all",
          EMAIL_REPLIES: false,
          EMAIL_REPLIES_PILOT: false,
          INTERACTIVE_BUTTONS: false,
        },
      });
      assert.ok(!JSON.stringify(body).includes("test-token"));
      assert.equal((await worker.fetch("/nothing")).status, 404);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});
