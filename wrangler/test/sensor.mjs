// The sensor run (issue 10): the real Worker in Miniflare handles 1,000 mails with faults,
// pushing its metrics to a real Pushgateway; after every 5 s of simulated traffic the
// Pushgateway's exposition is recorded, as a Prometheus scrape at that moment would take it.
//
//   node test/sensor.mjs <pushgateway-url> <output.json>
//
// Not a *.test.mjs: tests/worker/test_sensor.py runs it, backfills the recorded scrapes into
// a real Prometheus and judges them with `tgk-deploy gate` and `tgk-deploy backtest`.
// Faults, by mail index: 5 % unknown recipients (unrouted), 3 % to a reject route, 4 % of
// mail answered 500 by Telegram, 2 % Telegram timeouts, 30 % AI timeouts; 20 webhook posts
// with a wrong secret. Every fault is picked by index, so every run is the same.

import { writeFileSync } from "node:fs";
import { baseVars, startFakeServer, startWorker } from "./harness.mjs";

const [pushgateway, output] = process.argv.slice(2);
const MAILS = 1000;
const BATCHES = 12; // one minute of simulated traffic, a scrape every 5 s
const BOGUS_POSTS = 20;
const CONCURRENCY = 25;
const ANALYSIS = { sentiment: "neutral", urgency: "normal", summary: "Routine", confidence: 0.9 };

function plan(index) {
  const slot = index % 100;
  if (slot < 5) return { to: "nobody@tgk.test", expect: "unrouted", subject: `Mail ${index}` };
  if (slot < 8) return { to: "noreply@tgk.test", expect: "rejected", subject: `Mail ${index}` };
  const scope = ["alerts", "ops", "billing"][index % 3];
  const marks = [];
  if (index % 50 === 10 || index % 50 === 11) marks.push("[tg500]");
  if (index % 50 === 12) marks.push("[tgslow]");
  if ([3, 6, 9].includes(index % 10)) marks.push("[aislow]");
  const expect = marks.some((m) => m.startsWith("[tg")) ? "fallback" : "delivered";
  return { to: `${scope}@tgk.test`, expect, subject: `Mail ${index} ${marks.join(" ")}`.trim() };
}

const fake = await startFakeServer({
  "POST /telegram": (r) => {
    const text = r.json?.text ?? "";
    if (text.includes("[tg500]")) return { status: 500, json: { ok: false, description: "Internal Server Error" } };
    if (text.includes("[tgslow]")) return { status: 200, json: { ok: true, result: {} }, delayMs: 2500 };
    return { status: 200, json: { ok: true, result: { message_id: 1 } } };
  },
  "POST /ai": (r) => {
    const prompt = JSON.stringify(r.json ?? {});
    const reply = { status: 200, json: { choices: [{ message: { content: JSON.stringify(ANALYSIS) } }] } };
    return prompt.includes("[aislow]") ? { ...reply, delayMs: 2000 } : reply;
  },
});
const worker = await startWorker(
  {
    ...baseVars(fake),
    ENVIRONMENT: "production",
    // budgets a loaded CI machine keeps for healthy calls; the faults are far beyond them
    TELEGRAM_TIMEOUT_MS: "1200",
    AI_TIMEOUT_MS: "800",
    METRICS_PUSH_URL: `${pushgateway}/metrics/job/tgk-email-orchestrator`,
    AI_ANALYSIS: "true",
    EMAIL_REPLIES: "true",
    TELEGRAM_BOT_TOKEN: "123:sensor-token",
    OPENAI_API_KEY: "sk-sensor",
    REPLY_SIGNING_SECRET: "sensor-signing",
    TELEGRAM_WEBHOOK_SECRET: "sensor-webhook-secret",
  },
  { versionId: "5e45041d-sensor-version" },
);

async function pushedTotal() {
  const text = await (await fetch(`${pushgateway}/metrics`)).text();
  const total = [...text.matchAll(/^tgk_email_delivery_total\{[^}]*\} (\d+(?:\.\d+)?)$/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
  const bogus = [...text.matchAll(/^tgk_email_webhook_auth_failures_total\{[^}]*reason="bad_secret"[^}]*\} (\d+)$/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
  return { text, total, bogus };
}

/** Wait (event-driven polling, capped) until the Pushgateway holds every mail handled so far. */
async function settled(handled, posts) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const seen = await pushedTotal();
    if (seen.total === handled && seen.bogus === posts) return seen.text;
    if (Date.now() > deadline) throw new Error(`pushgateway holds ${seen.total} of ${handled} mails, ${seen.bogus} of ${posts} posts`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const expected = { delivered: 0, fallback: 0, unrouted: 0, rejected: 0, failed: 0 };
const seen = { delivered: 0, fallback: 0, unrouted: 0, rejected: 0, failed: 0 };
const scrapes = [];
const started = Date.now();
let posts = 0;
try {
  const perBatch = Math.ceil(MAILS / BATCHES);
  for (let batch = 0; batch < BATCHES; batch++) {
    const indices = [];
    for (let i = batch * perBatch; i < Math.min(MAILS, (batch + 1) * perBatch); i++) indices.push(i);
    for (let from = 0; from < indices.length; from += CONCURRENCY) {
      const slice = indices.slice(from, from + CONCURRENCY);
      const results = await Promise.all(
        slice.map(async (index) => {
          const mail = plan(index);
          expected[mail.expect] += 1;
          const result = await worker.email({ to: mail.to, subject: mail.subject, body: `Body of mail ${index}.` });
          return { mail, result };
        }),
      );
      for (const { result } of results) {
        if (result.error) seen.failed += 1;
        else if (result.calls.some((c) => c.action === "reject")) seen.rejected += 1;
        else if (result.calls.some((c) => c.action === "forward")) {
          const reason = result.calls.find((c) => c.action === "forward").headers["x-tgk-fallback-reason"] ?? "";
          if (reason.startsWith("no route") || reason.startsWith("domain")) seen.unrouted += 1;
          else seen.fallback += 1;
        } else seen.delivered += 1;
      }
    }
    for (; posts < Math.round(((batch + 1) * BOGUS_POSTS) / BATCHES); posts++) {
      const response = await worker.fetch("/telegram/webhook", {
        method: "POST",
        headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": "guessed" },
        body: JSON.stringify({ update_id: posts }),
      });
      if (response.status !== 401) throw new Error(`bogus post answered ${response.status}`);
      await response.body?.cancel();
    }
    const handled = Math.min(MAILS, (batch + 1) * perBatch);
    scrapes.push({ at_seconds: (batch + 1) * 5, text: await settled(handled, posts) });
  }
} finally {
  await worker.dispose();
  await fake.close();
}

writeFileSync(
  output,
  JSON.stringify({
    mails: MAILS,
    bogus_posts: posts,
    expected,
    seen,
    telegram_calls: fake.to("/telegram").length,
    ai_calls: fake.to("/ai").length,
    wall_seconds: (Date.now() - started) / 1000,
    scrapes,
  }),
);
