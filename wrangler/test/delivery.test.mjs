// email(): routing to Telegram, and the legacy router as the safety net.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { baseVars, startFakeServer, startWorker, telegramOk } from "./harness.mjs";

const SECRETS = { TELEGRAM_BOT_TOKEN: "123:test-token" };

describe("an email to a routed scope", () => {
  let fake;
  let worker;
  before(async () => {
    fake = await startFakeServer({ "POST /telegram": telegramOk });
    worker = await startWorker({ ...baseVars(fake), ...SECRETS });
  });
  after(async () => {
    await worker.dispose();
    await fake.close();
  });

  it("is posted to the scope's Telegram chat and not forwarded", async () => {
    const result = await worker.email({ to: "billing@tgk.test", subject: "Invoice 42", body: "Please pay." });
    assert.equal(result.error, null);
    assert.deepEqual(result.calls, []);
    const [post] = fake.to("/telegram");
    assert.equal(post.path, "/telegram/bot123:test-token/sendMessage");
    assert.equal(post.json.chat_id, "-1003");
    assert.equal(post.json.parse_mode, "HTML");
    assert.match(post.json.text, /\[billing\]<\/b> Invoice 42/);
    assert.match(post.json.text, /From: Jane Doe &lt;jane@example.org&gt;/);
    assert.match(post.json.text, /Please pay\./);
    assert.equal(post.json.reply_markup, undefined, "no keyboard while EMAIL_REPLIES is off");
  });

  it("with plus-addressing goes to the scope, and a critical tag raises the priority", async () => {
    const before = fake.to("/telegram").length;
    const result = await worker.email({ to: "billing+critical@tgk.test" });
    assert.deepEqual(result.calls, []);
    const post = fake.to("/telegram")[before];
    assert.equal(post.json.chat_id, "-1003");
    assert.match(post.json.text, /^🔴 <b>\[billing\]/);
  });
});

describe("when Telegram fails", () => {
  let fake;
  let mode = "500";
  before(async () => {
    fake = await startFakeServer({
      "POST /telegram": () =>
        mode === "500"
          ? { status: 500, json: { ok: false, description: "Internal Server Error" } }
          : { status: 200, json: { ok: true }, delayMs: 3000 },
    });
  });
  after(() => fake.close());

  it("a 500 answer sends the email to the legacy address, saying why", async () => {
    mode = "500";
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS });
    try {
      const result = await worker.email({ to: "alerts@tgk.test" });
      assert.equal(result.error, null);
      assert.deepEqual(result.calls, [
        {
          action: "forward",
          to: "legacy@mail.tgk.test",
          headers: { "x-tgk-fallback-reason": "HTTP 500: Internal Server Error" },
        },
      ]);
    } finally {
      await worker.dispose();
    }
  });

  it("a Telegram that does not answer in time also ends at the legacy address, within the budget", async () => {
    mode = "slow";
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS, TELEGRAM_TIMEOUT_MS: "300" });
    try {
      const result = await worker.email({ to: "alerts@tgk.test" });
      assert.deepEqual(result.calls.map((c) => [c.action, c.to, c.headers["x-tgk-fallback-reason"]]), [
        ["forward", "legacy@mail.tgk.test", "timeout"],
      ]);
      assert.ok(result.ms < 2000, `handler took ${result.ms} ms, Telegram budget is 300 ms`);
    } finally {
      await worker.dispose();
    }
  });

  it("a missing bot token is a Telegram failure too: forwarded, not dropped", async () => {
    const worker = await startWorker({ ...baseVars(fake) });
    try {
      const result = await worker.email({ to: "alerts@tgk.test" });
      assert.equal(result.calls[0].action, "forward");
      assert.equal(result.calls[0].to, "legacy@mail.tgk.test");
    } finally {
      await worker.dispose();
    }
  });
});

describe("addresses the routing table does not route", () => {
  let fake;
  let worker;
  before(async () => {
    fake = await startFakeServer({ "POST /telegram": telegramOk });
    worker = await startWorker({ ...baseVars(fake), ...SECRETS });
  });
  after(async () => {
    await worker.dispose();
    await fake.close();
  });

  it("an unknown scope is forwarded to the legacy address", async () => {
    const result = await worker.email({ to: "nobody@tgk.test" });
    assert.deepEqual(result.calls.map((c) => [c.action, c.to]), [["forward", "legacy@mail.tgk.test"]]);
    assert.equal(result.calls[0].headers["x-tgk-fallback-reason"], "no route for nobody");
    assert.equal(fake.to("/telegram").length, 0);
  });

  it("a domain outside the table is forwarded to the legacy address", async () => {
    const result = await worker.email({ to: "alerts@elsewhere.test" });
    assert.deepEqual(result.calls.map((c) => [c.action, c.to]), [["forward", "legacy@mail.tgk.test"]]);
  });

  it("an address the table marks reject is rejected with the table's reason, and nothing else", async () => {
    const result = await worker.email({ to: "noreply@tgk.test" });
    assert.deepEqual(result.calls, [{ action: "reject", reason: "This address does not accept mail." }]);
    assert.equal(fake.to("/telegram").length, 0);
  });
});

describe("a broken routing table", () => {
  it("does not lose mail: everything goes to the legacy address", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS, ROUTING_TABLE: "{not json" });
    try {
      const result = await worker.email({ to: "alerts@tgk.test" });
      assert.deepEqual(result.calls.map((c) => [c.action, c.to]), [["forward", "legacy@mail.tgk.test"]]);
      // a broken table is our failure: a degradation (fallback), not mail routed nowhere by design
      await fake.waitForPush([
        /^tgk_email_route_failures_total\{.*\} 1$/m,
        /^tgk_email_delivery_total\{status="fallback",.*\} 1$/m,
        /^tgk_email_delivery_total\{status="unrouted",.*\} 0$/m,
      ]);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });

  it("with no legacy address either, the handler fails loudly instead of dropping the email", async () => {
    const fake = await startFakeServer({});
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS, LEGACY_FORWARD_ADDRESS: "" });
    try {
      const result = await worker.email({ to: "nobody@tgk.test" });
      assert.deepEqual(result.calls, []);
      assert.match(result.error, /LEGACY_FORWARD_ADDRESS is not set/);
      await fake.waitForPush([/^tgk_email_delivery_total\{status="failed",.*\} 1$/m]);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});

describe("the ROUTING_KV namespace", () => {
  it("overrides the ROUTING_TABLE var per scope when bound", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk });
    const worker = await startWorker(
      { ...baseVars(fake), ...SECRETS },
      { kv: { "route:billing": { chat_id: "-7777" }, "route:newteam": { chat_id: "-8888" } } },
    );
    try {
      await worker.email({ to: "billing@tgk.test" });
      await worker.email({ to: "newteam@tgk.test" });
      await worker.email({ to: "ops@tgk.test" });
      assert.deepEqual(fake.to("/telegram").map((r) => r.json.chat_id), ["-7777", "-8888", "-1002"]);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});

describe("real-world messages", () => {
  let fake;
  let worker;
  before(async () => {
    fake = await startFakeServer({ "POST /telegram": telegramOk });
    worker = await startWorker({ ...baseVars(fake), ...SECRETS });
  });
  after(async () => {
    await worker.dispose();
    await fake.close();
  });

  it("a multipart message shows its decoded text part and an encoded subject", async () => {
    const before = fake.to("/telegram").length;
    const body = [
      "This is a multi-part message.",
      "--b1",
      "Content-Type: text/html; charset=utf-8",
      "",
      "<p>html</p>",
      "--b1",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: base64",
      "",
      Buffer.from("Grüße: the <disk> & the fan are down").toString("base64"),
      "--b1--",
    ].join("\r\n");
    const result = await worker.email({
      to: "billing@tgk.test",
      subject: `=?utf-8?B?${Buffer.from("Störung").toString("base64")}?=`,
      contentType: 'multipart/alternative; boundary="b1"',
      body,
    });
    assert.deepEqual(result.calls, []);
    const { text } = fake.to("/telegram")[before].json;
    assert.match(text, /\[billing\]<\/b> Störung/);
    assert.match(text, /Grüße: the &lt;disk&gt; &amp; the fan are down/);
    assert.doesNotMatch(text, /html/);
  });

  it("a huge body is cut so the Telegram message stays under its 4096-character limit", async () => {
    const before = fake.to("/telegram").length;
    await worker.email({ to: "billing@tgk.test", subject: "S".repeat(500), body: "&<>".repeat(5000) });
    const { text } = fake.to("/telegram")[before].json;
    assert.ok(text.length < 4096, `message is ${text.length} characters`);
    assert.match(text, /(&amp;|&lt;|&gt;)…$/m, "cut between entities, never inside one");
    assert.match(text, /S{199}…/);
  });
});

describe("the fallback reason header", () => {
  it("is plain printable ASCII even when Telegram's error text is not", async () => {
    const fake = await startFakeServer({
      "POST /telegram": () => ({ status: 400, json: { ok: false, description: "chat not found — ü\r\nX-Evil: 1" } }),
    });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS });
    try {
      const result = await worker.email({ to: "alerts@tgk.test" });
      assert.equal(result.error, null);
      assert.deepEqual(result.calls, [
        {
          action: "forward",
          to: "legacy@mail.tgk.test",
          headers: { "x-tgk-fallback-reason": "HTTP 400: chat not found ? ???X-Evil: 1" },
        },
      ]);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});
