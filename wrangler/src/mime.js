/**
 * Just enough MIME to show an email in Telegram: the first text/plain part,
 * decoded, and cut to a size a chat message can hold. Anything stranger falls
 * back to "(no text body)"; forwarding always sends the original bytes anyway.
 */

const MAX_RAW_BYTES = 256 * 1024;
const MAX_SUBJECT_CHARS = 200; // the subject is shown, and signed for replies, as cut here

/** Read at most MAX_RAW_BYTES of the raw message as text (latin1-safe). */
export async function readRaw(stream) {
  if (!stream) return "";
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  while (size < MAX_RAW_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  reader.cancel().catch(() => {});
  const bytes = new Uint8Array(Math.min(size, MAX_RAW_BYTES));
  let offset = 0;
  for (const chunk of chunks) {
    const room = bytes.length - offset;
    if (room <= 0) break;
    bytes.set(chunk.subarray(0, room), offset);
    offset += Math.min(room, chunk.byteLength);
  }
  return new TextDecoder("utf-8").decode(bytes);
}

function splitHeaders(text) {
  const at = text.search(/\r?\n\r?\n/);
  if (at === -1) return { head: text, body: "" };
  const gap = text.slice(at).match(/^\r?\n\r?\n/)[0].length;
  return { head: text.slice(0, at), body: text.slice(at + gap) };
}

function parseHeaderBlock(head) {
  const headers = new Map();
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function decodeQuotedPrintable(text) {
  const bytes = [];
  const soft = text.replace(/=\r?\n/g, "");
  for (let i = 0; i < soft.length; i++) {
    const hex = soft.slice(i + 1, i + 3);
    if (soft[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...new TextEncoder().encode(soft[i]));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function decodeBase64(text) {
  try {
    const binary = atob(text.replace(/\s+/g, ""));
    return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return "";
  }
}

function decodeBody(body, headers) {
  const encoding = (headers.get("content-transfer-encoding") ?? "").toLowerCase();
  if (encoding === "quoted-printable") return decodeQuotedPrintable(body);
  if (encoding === "base64") return decodeBase64(body);
  return body;
}

function firstPlainText(head, body, depth = 0) {
  const headers = parseHeaderBlock(head);
  const type = (headers.get("content-type") ?? "text/plain").toLowerCase();
  if (type.startsWith("text/plain")) return decodeBody(body, headers);
  const boundary = /boundary="?([^";]+)"?/i.exec(headers.get("content-type") ?? "")?.[1];
  if (!type.startsWith("multipart/") || !boundary || depth > 3) return null;
  for (const part of body.split(`--${boundary}`).slice(1)) {
    if (part.startsWith("--")) break;
    const { head: partHead, body: partBody } = splitHeaders(part.replace(/^\r?\n/, ""));
    const found = firstPlainText(partHead, partBody, depth + 1);
    if (found !== null) return found;
  }
  return null;
}

/** Decode RFC 2047 encoded words (=?utf-8?B?…?= / =?utf-8?Q?…?=) in a header value. */
export function decodeHeader(value) {
  return String(value ?? "").replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, charset, kind, data) => {
    if (kind.toUpperCase() === "B") return decodeBase64(data);
    return decodeQuotedPrintable(data.replace(/_/g, " "));
  });
}

/** {subject, from, text} of a raw RFC 5322 message. */
export function parseEmail(raw, fallbackHeaders) {
  const { head, body } = splitHeaders(raw);
  const headers = parseHeaderBlock(head);
  let subject = decodeHeader(headers.get("subject") ?? fallbackHeaders?.get?.("subject") ?? "").trim();
  if (subject.length > MAX_SUBJECT_CHARS) subject = `${subject.slice(0, MAX_SUBJECT_CHARS - 1)}…`;
  const from = decodeHeader(headers.get("from") ?? fallbackHeaders?.get?.("from") ?? "");
  const text = (firstPlainText(head, body) ?? "").replace(/\r\n?/g, "\n").trim();
  return { subject: subject || "(no subject)", from, text: text || "(no text body)" };
}
