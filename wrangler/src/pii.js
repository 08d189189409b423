/**
 * Personal data is removed before any text leaves for the AI service.
 *
 * `redact` replaces what it recognises with typed placeholders; `assertClean`
 * scans the result again with independent, looser patterns. If that second
 * look still finds something, the text is not sent at all (the caller counts
 * tgk_email_pii_blocked_total): better no analysis than a leak.
 */

export class PiiLeak extends Error {
  constructor(kinds) {
    super(`personal data left after redaction: ${kinds.join(", ")}`);
    this.name = "PiiLeak";
    this.kinds = kinds;
  }
}

function luhnValid(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

const RULES = [
  // e-mail addresses, including the sender's
  ["EMAIL", /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, () => true],
  // IBANs: country code, check digits, 11-30 alphanumerics (spaces allowed in groups of 4)
  ["IBAN", /\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b/g, () => true],
  // payment card numbers: 13-19 digits, optional spaces/dashes, Luhn-checked
  ["CARD", /\b\d(?:[ -]?\d){12,18}\b/g, (m) => luhnValid(m.replace(/\D/g, ""))],
  // any other long digit run (account, tracking numbers): not worth the risk
  ["NUMBER", /\b\d(?:[ -]?\d){15,}\b/g, () => true],
  // US social security numbers
  ["SSN", /\b\d{3}-\d{2}-\d{4}\b/g, () => true],
  // IPv4 addresses
  ["IP", /\b(?:\d{1,3}\.){3}\d{1,3}\b/g, () => true],
  // phone numbers: optional +country, 7-15 digits with the usual separators
  ["PHONE", /(?<![\w])\+?\d[\d ().-]{5,}\d(?![\w])/g, (m) => {
    const digits = m.replace(/\D/g, "");
    return digits.length >= 7 && digits.length <= 15;
  }],
];

/** Replace recognised personal data with [EMAIL], [PHONE], …; returns {text, found}. */
export function redact(text) {
  const found = {};
  let out = String(text ?? "");
  for (const [kind, pattern, accept] of RULES) {
    out = out.replace(pattern, (match) => {
      if (!accept(match)) return match;
      found[kind] = (found[kind] ?? 0) + 1;
      return `[${kind}]`;
    });
  }
  return { text: out, found };
}

const SECOND_LOOK = [
  ["EMAIL", /\S+@\S+\.\S+/],
  ["DIGITS", /\d(?:[^\d\n]{0,2}\d){8,}/],
];

/** Throw PiiLeak when redacted text still looks personal; the AI call is then skipped. */
export function assertClean(text) {
  const kinds = SECOND_LOOK.filter(([, pattern]) => pattern.test(text)).map(([kind]) => kind);
  if (kinds.length > 0) throw new PiiLeak(kinds);
}
