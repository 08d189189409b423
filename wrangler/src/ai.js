/**
 * AI triage: sentiment, urgency and a one-line summary of an email.
 *
 * Runs only when OPENAI_API_KEY is bound and AI_ANALYSIS is "true". Text is
 * redacted first (pii.js); if redaction cannot vouch for the result nothing is
 * sent. A hard timeout (AI_TIMEOUT_MS) bounds the whole call, and every failure
 * returns null: the email is delivered without analysis, never held or lost.
 */

import { callJson, DeadlineExceeded } from "./deadline.js";
import { assertClean, PiiLeak, redact } from "./pii.js";

const MAX_CHARS = 4000;
const SENTIMENTS = new Set(["positive", "neutral", "negative"]);
const URGENCIES = new Set(["low", "normal", "high"]);

const INSTRUCTIONS =
  "You triage operational email for an on-call team. Answer with a JSON object: " +
  '{"sentiment": "positive|neutral|negative", "urgency": "low|normal|high", ' +
  '"summary": "<one sentence>", "confidence": <0..1>}. Placeholders like [EMAIL] hide personal data.';

/** The redacted text that may leave the Worker, or throws PiiLeak. */
export function promptFor(email) {
  const { text } = redact(`Subject: ${email.subject}\n\n${email.text.slice(0, MAX_CHARS)}`);
  assertClean(text);
  return text;
}

function parseAnalysis(body) {
  const content = body?.choices?.[0]?.message?.content;
  if (typeof content !== "string") return null;
  let parsed;
  try {
    parsed = JSON.parse(content);
  } catch {
    return null;
  }
  const confidence = Number(parsed.confidence);
  if (!SENTIMENTS.has(parsed.sentiment) || !URGENCIES.has(parsed.urgency)) return null;
  if (!Number.isFinite(confidence) || confidence < 0 || confidence > 1) return null;
  return {
    sentiment: parsed.sentiment,
    urgency: parsed.urgency,
    summary: redact(String(parsed.summary ?? "")).text.slice(0, 300),
    confidence,
  };
}

/** Analyse one email; null when AI is off or anything about it fails. */
export async function analyse(email, config, env, metrics) {
  if (!config.ai.enabled) return null;

  let prompt;
  try {
    prompt = promptFor(email);
  } catch (error) {
    // The safety net worked: nothing was sent. Counted apart from AI failures.
    metrics.inc("tgk_email_pii_blocked_total");
    console.warn(`ai: not sent: ${error instanceof PiiLeak ? error.message : "redaction failed"}`);
    return null;
  }

  const started = Date.now();
  metrics.inc("tgk_email_ai_requests_total");
  metrics.inc("tgk_email_external_api_requests_total", { api: "openai" });
  let reason = null;
  let analysis = null;
  try {
    const answer = await callJson(config.ai.timeoutMs, "AI service", `${config.ai.apiBase}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${env.OPENAI_API_KEY}` },
      body: JSON.stringify({
        model: config.ai.model,
        temperature: 0,
        response_format: { type: "json_object" },
        messages: [
          { role: "system", content: INSTRUCTIONS },
          { role: "user", content: prompt },
        ],
      }),
    });
    if (!answer.ok) reason = "http_error";
    else {
      analysis = parseAnalysis(answer.body);
      if (!analysis) reason = "bad_response";
    }
  } catch (error) {
    reason = error instanceof DeadlineExceeded ? "timeout" : "network";
  }
  metrics.observe("tgk_email_ai_processing_seconds", (Date.now() - started) / 1000);
  if (reason) {
    metrics.inc("tgk_email_ai_failures_total", { reason });
    metrics.inc("tgk_email_external_api_failures_total", { api: "openai" });
    console.warn(`ai: analysis skipped (${reason})`);
    return null;
  }
  metrics.observe("tgk_email_ai_confidence", analysis.confidence);
  return analysis;
}
