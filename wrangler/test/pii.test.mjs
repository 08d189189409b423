// pii.js on its own: plain JavaScript, no Worker runtime needed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertClean, PiiLeak, redact } from "../src/pii.js";

describe("redact", () => {
  const cases = [
    ["mail me at a.b-c@example.co.uk", "mail me at [EMAIL]", "EMAIL"],
    ["call +1 (555) 123-4567 now", "call [PHONE] now", "PHONE"],
    ["card 4111-1111-1111-1111", "card [CARD]", "CARD"],
    ["IBAN GB82 WEST 1234 5698 7654 32", "IBAN [IBAN]", "IBAN"],
    ["ssn 078-05-1120", "ssn [SSN]", "SSN"],
    ["host 192.168.1.20 down", "host [IP] down", "IP"],
    ["tracking 1234 5678 9012 3456 7890", "tracking [NUMBER]", "NUMBER"],
  ];
  for (const [input, expected, kind] of cases) {
    it(`replaces ${kind}`, () => {
      const { text, found } = redact(input);
      assert.equal(text, expected);
      assert.equal(found[kind], 1);
    });
  }

  it("leaves ordinary text alone", () => {
    const text = "Disk /var is 97% full on db-1 since 10:30; see runbook step 4.";
    assert.equal(redact(text).text, text);
  });

  it("output of redact passes the second look", () => {
    const { text } = redact("x@y.com +49 30 1234567 4111111111111111 DE89370400440532013000");
    assert.doesNotThrow(() => assertClean(text));
  });
});

describe("assertClean", () => {
  it("refuses text that still holds an address-like or long number-like string", () => {
    assert.throws(() => assertClean("root@db-1.internal.x"), PiiLeak);
    assert.throws(() => assertClean("ref 12/34/56/78/90"), PiiLeak);
  });
});
