// POST /selftest: every route's decision, nothing delivered, only for whoever holds SMOKE_TOKEN.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TEST_TABLE, baseVars, startFakeServer, startWorker, telegramOk } from "./harness.mjs";

const TOKEN = "smoke-token-for-tests-0123456789";
const SECRETS = { TELEGRAM_BOT_TOKEN: "123:test-token", SMOKE_TOKEN: TOKEN };

async function selfTest(worker, token = TOKEN, init = {}) {
  const headers = token === null ? {} : { authorization: `Bearer ${token}` };
  const response = await worker.fetch("/selftest", { method: "POST", headers, ...init });
  return { status: response.status, body: await response.json() };
}

function withTable(fake, table, extra = {}) {
  return { ...baseVars(fake), ...SECRETS, ROUTING_TABLE: JSON.stringify(table), ...extra };
}

describe("self-test of a good routing table", () => {
  let fake;
  let worker;
  before(async () => {
    fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /metrics": () => ({ status: 200 }) });
    worker = await startWorker({ ...baseVars(fake), ...SECRETS }, { versionId: "7c1a2b3c-candidate" });
  });
  after(async () => {
    await worker.dispose();
    await fake.close();
  });

  it("passes every route, under the version that answered", async () => {
    const { status, body } = await selfTest(worker);
    assert.equal(status, 200);
    assert.equal(body.version.id, "7c1a2b3c-candidate");
    assert.equal(body.ok, true);
    assert.equal(body.failed, 0);
    assert.deepEqual(
      body.routes.map((r) => [r.scope, r.domain, r.decision, r.ok]),
      [
        ["alerts", "tgk.test", "telegram", true],
        ["ops", "tgk.test", "telegram", true],
        ["billing", "tgk.test", "telegram", true],
        ["noreply", "tgk.test", "reject", true],
      ],
    );
  });

  it("delivers nothing: no Telegram post, no metrics push", async () => {
    await selfTest(worker);
    assert.equal(fake.to("/telegram").length, 0);
    assert.equal(fake.to("/metrics").length, 0);
  });

  it("names no chat id and no legacy address", async () => {
    const { body } = await selfTest(worker);
    const text = JSON.stringify(body);
    for (const route of Object.values(TEST_TABLE.routes)) {
      if (route.chat_id) assert.ok(!text.includes(route.chat_id), `chat id ${route.chat_id} in the answer`);
    }
    assert.ok(!text.includes("legacy@mail.tgk.test"));
  });

  it("refuses a wrong, missing or differently-sized token with 401 and nothing else", async () => {
    for (const token of ["wrong", `${TOKEN}x`, TOKEN.slice(0, -1), "", null]) {
      const { status, body } = await selfTest(worker, token);
      assert.equal(status, 401, String(token));
      assert.deepEqual(body, { error: "unauthorized" });
    }
    const basic = await worker.fetch("/selftest", { method: "POST", headers: { authorization: `Basic ${btoa(`x:${TOKEN}`)}` } });
    assert.equal(basic.status, 401);
    assert.equal((await worker.fetch("/selftest")).status, 404, "GET is no self-test");
  });
});

describe("self-test of a broken routing table", () => {
  let fake;
  before(async () => {
    fake = await startFakeServer({ "POST /telegram": telegramOk });
  });
  after(async () => fake.close());

  async function run(table, extra = {}) {
    const worker = await startWorker(withTable(fake, table, extra));
    try {
      return await selfTest(worker);
    } finally {
      await worker.dispose();
    }
  }

  it("fails a route pointing at a handler the Worker does not have, and passes the others", async () => {
    const table = { ...TEST_TABLE, routes: { ...TEST_TABLE.routes, ops: { action: "pagerduty", service: "P123" } } };
    const { status, body } = await run(table);
    assert.equal(status, 200);
    assert.equal(body.ok, false);
    assert.equal(body.failed, 1);
    const ops = body.routes.find((r) => r.scope === "ops");
    assert.equal(ops.ok, false);
    assert.match(ops.reason, /unknown action "pagerduty"/);
    assert.ok(body.routes.filter((r) => r.scope !== "ops").every((r) => r.ok));
  });

  it("fails a scope no address can reach", async () => {
    const table = { ...TEST_TABLE, routes: { ...TEST_TABLE.routes, "Billing Team": { chat_id: "-1009" } } };
    const { body } = await run(table);
    const bad = body.routes.find((r) => r.scope === "Billing Team");
    assert.equal(bad.ok, false);
    assert.match(bad.reason, /no address reaches this scope/);
  });

  it("fails a route with nowhere to send to, or a chat id Telegram would refuse", async () => {
    const table = {
      ...TEST_TABLE,
      routes: { ...TEST_TABLE.routes, ops: { priority: "normal" }, billing: { chat_id: "billing-room" } },
    };
    const { body } = await run(table);
    const byScope = Object.fromEntries(body.routes.map((r) => [r.scope, r]));
    assert.equal(byScope.ops.ok, false);
    assert.equal(byScope.ops.decision, "legacy");
    assert.equal(byScope.billing.ok, false);
    assert.match(byScope.billing.reason, /chat id/);
    assert.ok(!JSON.stringify(body).includes("billing-room"), "the bad chat id is not echoed");
    assert.equal(byScope.alerts.ok, true);
  });

  it("fails every domain of the table: a route is checked once per domain", async () => {
    const table = { ...TEST_TABLE, domains: ["tgk.test", "Other.Test"], routes: { alerts: { action: "forward" } } };
    const { body } = await run(table);
    assert.deepEqual(body.routes.map((r) => [r.domain, r.ok]), [["tgk.test", false], ["other.test", false]]);
  });

  it("an unusable table is one failed entry, not an empty pass, and its text is not quoted", async () => {
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS, ROUTING_TABLE: '{"routes": {"alerts": {"chat_id": "-1001"' });
    try {
      const { body } = await selfTest(worker);
      assert.equal(body.ok, false);
      assert.equal(body.routes.length, 1);
      assert.ok(!JSON.stringify(body).includes("-1001"));
    } finally {
      await worker.dispose();
    }
  });

  it("the bridge passes every route only when it has a legacy address to forward to", async () => {
    const good = await run(TEST_TABLE, { LEGACY_BRIDGE: "true" });
    assert.equal(good.body.ok, true);
    assert.ok(good.body.routes.every((r) => r.decision === "bridge"));
    const bad = await run(TEST_TABLE, { LEGACY_BRIDGE: "true", LEGACY_FORWARD_ADDRESS: "" });
    assert.equal(bad.body.ok, false);
  });
});

describe("self-test with dynamic routing on", () => {
  it("asks no schedule API: the static route is what is tested", async () => {
    const fake = await startFakeServer({ "GET /schedule": () => ({ json: { chat_id: "-9001" } }) });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS, DYNAMIC_ROUTING: "true", DYNAMIC_ROUTING_SCOPE: "all" });
    try {
      const { body } = await selfTest(worker);
      assert.equal(body.ok, true);
      assert.equal(fake.to("/schedule").length, 0);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});

describe("self-test without SMOKE_TOKEN bound", () => {
  it("does not exist: 404, as any unknown path, whatever the token", async () => {
    const fake = await startFakeServer({});
    const worker = await startWorker({ ...baseVars(fake), TELEGRAM_BOT_TOKEN: "123:test-token" });
    try {
      for (const token of [TOKEN, "", null]) {
        const { status, body } = await selfTest(worker, token);
        assert.equal(status, 404);
        assert.deepEqual(body, { error: "not found" });
      }
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});
