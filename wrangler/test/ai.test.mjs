// AI analysis: only when switched on and keyed, never at the cost of delivery or privacy.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { baseVars, startFakeServer, startWorker, telegramOk } from "./harness.mjs";

const SECRETS = { TELEGRAM_BOT_TOKEN: "123:test-token" };
const ANALYSIS = { sentiment: "negative", urgency: "high", summary: "Disk is full on db-1", confidence: 0.9 };
const aiOk = () => ({ status: 200, json: { choices: [{ message: { content: JSON.stringify(ANALYSIS) } }] } });

describe("AI analysis", () => {
  let fake;
  let aiReply = aiOk;
  let worker;
  beforeEach(async () => {
    aiReply = aiOk;
    fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /ai": (r) => aiReply(r) });
  });
  afterEach(async () => {
    await worker?.dispose();
    worker = null;
    await fake.close();
  });

  it("is off by default: no call to the AI service even with a key bound", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, OPENAI_API_KEY: "sk-test" });
    await worker.email({ to: "alerts@tgk.test" });
    assert.equal(fake.to("/ai").length, 0);
    assert.doesNotMatch(fake.to("/telegram")[0].json.text, /🤖/);
  });

  it("stays off when AI_ANALYSIS is true but OPENAI_API_KEY is not bound", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, AI_ANALYSIS: "true" });
    await worker.email({ to: "alerts@tgk.test" });
    assert.equal(fake.to("/ai").length, 0);
  });

  it("when on and keyed, adds the analysis to the Telegram message", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, AI_ANALYSIS: "true", OPENAI_API_KEY: "sk-test" });
    const result = await worker.email({ to: "alerts@tgk.test" });
    assert.deepEqual(result.calls, []);
    const [call] = fake.to("/ai");
    assert.equal(call.path, "/ai/chat/completions");
    assert.equal(call.headers.authorization, "Bearer sk-test");
    assert.match(fake.to("/telegram")[0].json.text, /🤖 negative · high urgency — Disk is full on db-1/);
    await fake.waitForPush([
      /^tgk_email_ai_requests_total\{.*\} 1$/m,
      /^tgk_email_ai_processing_seconds_count\{.*\} 1$/m,
      /^tgk_email_ai_confidence_sum\{.*\} 0\.9$/m,
      /^tgk_email_ai_confidence_count\{.*\} 1$/m,
    ]);
  });

  it("redacts personal data before anything reaches the AI service", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, AI_ANALYSIS: "true", OPENAI_API_KEY: "sk-test" });
    const body = [
      "Customer bob.smith@example.com called from +44 20 7946 0958.",
      "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789.",
      "Server 10.20.30.40 is down.",
    ].join("\n");
    await worker.email({ to: "alerts@tgk.test", subject: "Call from jane@example.org", body });
    const [call] = fake.to("/ai");
    const sent = JSON.stringify(call.json);
    for (const secret of ["bob.smith@example.com", "jane@example.org", "7946", "4111", "DE89", "123-45-6789", "10.20.30.40"]) {
      assert.ok(!sent.includes(secret), `${secret} reached the AI service`);
    }
    const prompt = call.json.messages.find((m) => m.role === "user").content;
    for (const placeholder of ["[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[SSN]", "[IP]"]) {
      assert.ok(prompt.includes(placeholder), `${placeholder} missing from: ${prompt}`);
    }
    // Telegram is the destination, not a third party: it still gets the original text.
    assert.match(fake.to("/telegram")[0].json.text, /bob\.smith@example\.com/);
  });

  it("text that still looks personal after redaction is not sent, and the failure is counted", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, AI_ANALYSIS: "true", OPENAI_API_KEY: "sk-test" });
    const result = await worker.email({ to: "alerts@tgk.test", body: "Write to root@localhost.x about it." });
    assert.deepEqual(result.calls, []);
    assert.equal(fake.to("/ai").length, 0, "nothing may leave when redaction cannot vouch for the text");
    assert.equal(fake.to("/telegram").length, 1);
    const push = await fake.waitForPush([/^tgk_email_pii_blocked_total\{.*\} 1$/m]);
    // nothing was sent, so no AI call was made or failed
    assert.match(push.body, /^tgk_email_ai_requests_total\{.*\} 0$/m);
    assert.doesNotMatch(push.body, /^tgk_email_ai_failures_total\{.*\} [1-9]/m);
  });

  it("a slow AI service is cut off at AI_TIMEOUT_MS and the email is delivered without analysis", async () => {
    aiReply = () => ({ ...aiOk(), delayMs: 3000 });
    worker = await startWorker({
      ...baseVars(fake), ...SECRETS, AI_ANALYSIS: "true", OPENAI_API_KEY: "sk-test", AI_TIMEOUT_MS: "200",
    });
    const result = await worker.email({ to: "alerts@tgk.test" });
    assert.equal(result.error, null);
    assert.deepEqual(result.calls, [], "delivered, not forwarded");
    assert.ok(result.ms < 1500, `handler took ${result.ms} ms with a 200 ms AI budget`);
    assert.equal(fake.to("/telegram").length, 1);
    assert.doesNotMatch(fake.to("/telegram")[0].json.text, /🤖/);
    const push = await fake.waitForPush([
      /^tgk_email_ai_failures_total\{reason="timeout",.*\} 1$/m,
      /^tgk_email_delivery_total\{status="delivered",.*\} 1$/m,
    ]);
    // the latency histogram holds the timed-out call, at (at least) its budget
    assert.match(push.body, /^tgk_email_ai_processing_seconds_count\{.*\} 1$/m);
    assert.match(push.body, /^tgk_email_ai_processing_seconds_bucket\{le="0\.1",.*\} 0$/m);
  });

  it("an AI error or nonsense answer is counted and delivery goes on", async () => {
    aiReply = () => ({ status: 200, json: { choices: [{ message: { content: "I think it is sad" } }] } });
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, AI_ANALYSIS: "true", OPENAI_API_KEY: "sk-test" });
    await worker.email({ to: "alerts@tgk.test" });
    aiReply = () => ({ status: 503, json: { error: "overloaded" } });
    await worker.email({ to: "alerts@tgk.test" });
    assert.equal(fake.to("/telegram").length, 2);
    await fake.waitForPush([
      /^tgk_email_ai_failures_total\{reason="bad_response",.*\} 1$/m,
      /^tgk_email_ai_failures_total\{reason="http_error",.*\} 1$/m,
      /^tgk_email_ai_requests_total\{.*\} 2$/m,
      /^tgk_email_delivery_total\{status="delivered",.*\} 2$/m,
    ]);
  });
});
