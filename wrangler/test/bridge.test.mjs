// LEGACY_BRIDGE: the existing system's path through the Worker. Every message reaches the
// legacy router unchanged, whatever the routing table says; nothing goes to Telegram.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { baseVars, startFakeServer, startWorker, telegramOk } from "./harness.mjs";

const SECRETS = { TELEGRAM_BOT_TOKEN: "123:test-token" };
// every kind of address the table knows: routed, critical-tagged, rejected, unknown, foreign
const RECIPIENTS = [
  "alerts@tgk.test",
  "alerts+critical@tgk.test",
  "ops@tgk.test",
  "billing@tgk.test",
  "noreply@tgk.test",
  "nobody@tgk.test",
  "someone@elsewhere.example",
];

describe("bridge mode (LEGACY_BRIDGE=true)", () => {
  let fake;
  let worker;
  before(async () => {
    fake = await startFakeServer({ "POST /telegram": telegramOk, "POST /metrics": () => ({ status: 200 }) });
    worker = await startWorker({ ...baseVars(fake), ...SECRETS, LEGACY_BRIDGE: "true" });
  });
  after(async () => {
    await worker.dispose();
    await fake.close();
  });

  it("forwards every message to the legacy router without a header, and posts nothing", async () => {
    for (const to of RECIPIENTS) {
      const result = await worker.email({ to });
      assert.equal(result.error, null, to);
      assert.deepEqual(result.calls, [{ action: "forward", to: "legacy@mail.tgk.test", headers: {} }], to);
    }
    assert.equal(fake.to("/telegram").length, 0);
  });

  it("counts them as bridged, under its own version id", async () => {
    const push = await fake.waitForPush([new RegExp(`^tgk_email_delivery_total\\{status="bridged",.*\\} ${RECIPIENTS.length}$`, "m")]);
    assert.match(push.body, /^tgk_email_delivery_total\{status="rejected",.*\} 0$/m);
    assert.match(push.body, /^tgk_email_delivery_total\{status="delivered",.*\} 0$/m);
  });

  it("says so on /health", async () => {
    const health = await (await worker.fetch("/health")).json();
    assert.equal(health.flags.LEGACY_BRIDGE, true);
  });
});

describe("the same code with LEGACY_BRIDGE off", () => {
  it("routes as the orchestrator: Telegram for routed scopes, a reject for noreply", async () => {
    const fake = await startFakeServer({ "POST /telegram": telegramOk });
    const worker = await startWorker({ ...baseVars(fake), ...SECRETS });
    try {
      assert.deepEqual((await worker.email({ to: "billing@tgk.test" })).calls, []);
      assert.equal((await worker.email({ to: "noreply@tgk.test" })).calls[0].action, "reject");
      assert.equal(fake.to("/telegram").length, 1);
    } finally {
      await worker.dispose();
      await fake.close();
    }
  });
});
