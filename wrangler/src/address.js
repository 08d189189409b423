/**
 * Recipient addresses: `<scope>@<domain>` and plus-addressing `<scope>+<tag>@<domain>`.
 */

/** Split a recipient into scope, tag and domain (lower-cased); null when it is not an address. */
export function parseRecipient(address) {
  const match = /^\s*<?([^@<>\s]+)@([^@<>\s]+?)>?\s*$/.exec(String(address ?? ""));
  if (!match) return null;
  const [, local, domain] = match;
  const plus = local.indexOf("+");
  const scope = (plus === -1 ? local : local.slice(0, plus)).toLowerCase();
  const tag = plus === -1 ? null : local.slice(plus + 1).toLowerCase() || null;
  if (!scope) return null;
  return { scope, tag, domain: domain.toLowerCase(), address: `${local}@${domain}`.toLowerCase() };
}
