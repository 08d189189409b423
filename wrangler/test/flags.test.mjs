// Feature flags: DYNAMIC_ROUTING (+ scope), EMAIL_REPLIES (+ pilot), INTERACTIVE_BUTTONS.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { signReply } from "../src/replies.js";
import { baseVars, startFakeServer, startWorker, telegramOk } from "./harness.mjs";

const SECRETS = { TELEGRAM_BOT_TOKEN: "123:test-token" };

describe("DYNAMIC_ROUTING", () => {
  let fake;
  let worker;
  let schedule;
  beforeEach(async () => {
    schedule = () => ({ status: 200, json: { user: "alice" } });
    fake = await startFakeServer({ "POST /telegram": telegramOk, "GET /schedule": (r) => schedule(r) });
  });
  afterEach(async () => {
    await worker?.dispose();
    worker = null;
    await fake.close();
  });

  it("off: the static chat, no schedule lookup", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS });
    await worker.email({ to: "alerts@tgk.test" });
    assert.equal(fake.to("/schedule").length, 0);
    assert.equal(fake.to("/telegram")[0].json.chat_id, "-1001");
  });

  it("on, scope critical: critical alerts go to whoever is on call, the rest keep the table", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, DYNAMIC_ROUTING: "true", DYNAMIC_ROUTING_SCOPE: "critical" });
    await worker.email({ to: "alerts@tgk.test" });
    await worker.email({ to: "ops@tgk.test" });
    assert.deepEqual(fake.to("/schedule").map((r) => r.path), ["/schedule/oncall/sre-primary"]);
    const [critical, normal] = fake.to("/telegram");
    assert.equal(critical.json.chat_id, "-2001", "alice's chat, from the table's people");
    assert.match(critical.json.text, /On call: alice/);
    assert.equal(normal.json.chat_id, "-1002");
  });

  it("on, scope all: every route with a schedule asks the schedule API", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, DYNAMIC_ROUTING: "true", DYNAMIC_ROUTING_SCOPE: "all" });
    await worker.email({ to: "ops@tgk.test" });
    assert.deepEqual(fake.to("/schedule").map((r) => r.path), ["/schedule/oncall/ops"]);
    assert.equal(fake.to("/telegram")[0].json.chat_id, "-2001");
  });

  it("a slow or failing schedule API falls back to the static chat and is counted", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, DYNAMIC_ROUTING: "true", SCHEDULE_TIMEOUT_MS: "200" });
    schedule = () => ({ status: 200, json: { user: "alice" }, delayMs: 2000 });
    const slow = await worker.email({ to: "alerts@tgk.test" });
    schedule = () => ({ status: 502, json: {} });
    await worker.email({ to: "alerts@tgk.test" });
    assert.deepEqual(slow.calls, []);
    assert.ok(slow.ms < 1500, `handler took ${slow.ms} ms with a 200 ms schedule budget`);
    assert.deepEqual(fake.to("/telegram").map((r) => r.json.chat_id), ["-1001", "-1001"]);
    await fake.waitForPush([
      /^tgk_email_external_api_requests_total\{api="schedule",.*\} 2$/m,
      /^tgk_email_external_api_failures_total\{api="schedule",.*\} 2$/m,
      /^tgk_email_oncall_lookups_total\{outcome="failed",.*\} 2$/m,
      /^tgk_email_oncall_lookups_total\{outcome="responder",.*\} 0$/m,
    ]);
  });

  it("each lookup is counted by whether it named someone reachable", async () => {
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, DYNAMIC_ROUTING: "true" });
    await worker.email({ to: "alerts@tgk.test" });
    schedule = () => ({ status: 200, json: { user: "mallory" } });
    await worker.email({ to: "alerts@tgk.test" });
    assert.deepEqual(fake.to("/telegram").map((r) => r.json.chat_id), ["-2001", "-1001"]);
    await fake.waitForPush([
      /^tgk_email_oncall_lookups_total\{outcome="responder",.*\} 1$/m,
      /^tgk_email_oncall_lookups_total\{outcome="unknown",.*\} 1$/m,
    ]);
  });
});

describe("EMAIL_REPLIES", () => {
  const REPLY_SECRETS = { ...SECRETS, REPLY_SIGNING_SECRET: "sign-me" };
  let fake;
  let worker;
  beforeEach(async () => {
    fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /mail/send": () => ({ status: 202, json: { id: "m1" } }) });
  });
  afterEach(async () => {
    await worker?.dispose();
    worker = null;
    await fake.close();
  });

  /** The update Telegram would post when `userId` replies to `notification` in chat `chatId`. */
  const replyUpdate = (notification, { userId = 42, chatId = -1003, text = "On it." } = {}) => ({
    update_id: 1,
    message: {
      message_id: 2,
      from: { id: userId },
      chat: { id: chatId },
      text,
      reply_to_message: { message_id: 1, text: notification.replace(/<[^>]+>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&") },
    },
  });
  const post = (update) =>
    worker.fetch("/telegram/webhook", { method: "POST", body: JSON.stringify(update), headers: { "content-type": "application/json" } });

  it("off: no reply keyboard and the webhook refuses", async () => {
    worker = await startWorker({ ...baseVars(fake), ...REPLY_SECRETS });
    await worker.email({ to: "billing@tgk.test" });
    const [sent] = fake.to("/telegram");
    assert.equal(sent.json.reply_markup, undefined);
    assert.doesNotMatch(sent.json.text, /ref: /);
    assert.equal((await post({ update_id: 1 })).status, 404);
  });

  it("on: the notification carries a signed ref and a reply button; a reply is mailed to the sender", async () => {
    worker = await startWorker({ ...baseVars(fake), ...REPLY_SECRETS, EMAIL_REPLIES: "true" });
    await worker.email({ to: "billing@tgk.test", subject: "Invoice 42" });
    const [sent] = fake.to("/telegram");
    assert.deepEqual(sent.json.reply_markup, { inline_keyboard: [[{ text: "✉️ Reply by email", callback_data: "reply" }]] });
    const ref = await signReply("sign-me", "-1003", "Jane Doe <jane@example.org>", "Invoice 42");
    assert.match(sent.json.text, new RegExp(`ref: ${ref}$`));

    const response = await post(replyUpdate(sent.json.text));
    assert.equal(response.status, 200);
    const [mail] = fake.to("/mail/send");
    assert.deepEqual(mail.json, { from: "oncall@tgk.test", to: "jane@example.org", subject: "Re: Invoice 42", text: "On it." });
    await fake.waitForPush([/^tgk_email_reply_total\{status="sent",.*\} 1$/m]);
  });

  it("a reply whose ref does not verify is refused and counted", async () => {
    worker = await startWorker({ ...baseVars(fake), ...REPLY_SECRETS, EMAIL_REPLIES: "true" });
    await worker.email({ to: "billing@tgk.test", subject: "Invoice 42" });
    const forged = fake.to("/telegram")[0].json.text.replace("Invoice 42", "Invoice 43");
    assert.equal((await post(replyUpdate(forged))).status, 403);
    assert.equal((await post(replyUpdate(fake.to("/telegram")[0].json.text, { chatId: -999 }))).status, 403);
    assert.equal(fake.to("/mail/send").length, 0);
    await fake.waitForPush([/^tgk_email_webhook_auth_failures_total\{reason="bad_signature",.*\} 2$/m]);
  });

  it("pilot mode: only listed Telegram users may reply", async () => {
    worker = await startWorker({
      ...baseVars(fake), ...REPLY_SECRETS, EMAIL_REPLIES: "true", EMAIL_REPLIES_PILOT: "true", EMAIL_REPLIES_PILOT_USERS: "7, 42",
    });
    await worker.email({ to: "billing@tgk.test" });
    const text = fake.to("/telegram")[0].json.text;
    assert.equal((await post(replyUpdate(text, { userId: 99 }))).status, 403);
    assert.equal((await post(replyUpdate(text, { userId: 42 }))).status, 200);
    assert.equal(fake.to("/mail/send").length, 1);
  });

  it("a user flooding replies is rate limited and counted", async () => {
    worker = await startWorker({ ...baseVars(fake), ...REPLY_SECRETS, EMAIL_REPLIES: "true", REPLY_RATE_LIMIT_PER_MINUTE: "2" });
    await worker.email({ to: "billing@tgk.test" });
    const text = fake.to("/telegram")[0].json.text;
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(replyUpdate(text))).status);
    assert.deepEqual(statuses, [200, 200, 429, 429]);
    await fake.waitForPush([
      /^tgk_email_reply_rate_limited_total\{.*\} 2$/m,
      /^tgk_email_reply_total\{status="sent",.*\} 2$/m,
    ]);
  });
});

describe("INTERACTIVE_BUTTONS", () => {
  it("adds acknowledge and escalate buttons", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS, INTERACTIVE_BUTTONS: "true" });
    try {
      await worker.email({ to: "alerts@tgk.test" });
      assert.deepEqual(fake.to("/telegram")[0].json.reply_markup.inline_keyboard[0].map((b) => b.callback_data), ["ack", "escalate"]);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});
