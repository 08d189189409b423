/**
 * Settings and feature flags, read once per invocation from the Worker's vars.
 *
 * Vars are plain-text bindings: a flag is on only when its text is "true", so a
 * missing or misspelt var leaves the feature off (the safe side of a rollout).
 */

const DEFAULTS = {
  TELEGRAM_API_BASE: "https://api.telegram.org",
  TELEGRAM_TIMEOUT_MS: "5000",
  AI_API_BASE: "https://api.openai.com/v1",
  AI_MODEL: "gpt-4o-mini",
  AI_TIMEOUT_MS: "3000",
  SCHEDULE_TIMEOUT_MS: "1500",
  DYNAMIC_ROUTING_SCOPE: "critical",
  REPLY_RATE_LIMIT_PER_MINUTE: "5",
  ENVIRONMENT: "production",
};

export function flag(env, name) {
  return String(env[name] ?? "").trim().toLowerCase() === "true";
}

function text(env, name) {
  const value = env[name];
  return value === undefined || value === null || value === "" ? DEFAULTS[name] ?? "" : String(value);
}

function millis(env, name) {
  const value = Number.parseInt(text(env, name), 10);
  return Number.isFinite(value) && value > 0 ? value : Number.parseInt(DEFAULTS[name], 10);
}

function list(env, name) {
  return text(env, name)
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** Everything the handlers need, with defaults applied; secrets appear only as "bound or not". */
export function readConfig(env) {
  const scope = text(env, "DYNAMIC_ROUTING_SCOPE").toLowerCase() === "all" ? "all" : "critical";
  const aiFlag = flag(env, "AI_ANALYSIS");
  const aiKeyBound = Boolean(env.OPENAI_API_KEY);
  return {
    environment: text(env, "ENVIRONMENT"),
    legacyForwardAddress: text(env, "LEGACY_FORWARD_ADDRESS"),
    legacyBridge: flag(env, "LEGACY_BRIDGE"),
    telegram: {
      apiBase: text(env, "TELEGRAM_API_BASE").replace(/\/+$/, ""),
      timeoutMs: millis(env, "TELEGRAM_TIMEOUT_MS"),
    },
    ai: {
      enabled: aiFlag && aiKeyBound,
      flag: aiFlag,
      keyBound: aiKeyBound,
      apiBase: text(env, "AI_API_BASE").replace(/\/+$/, ""),
      model: text(env, "AI_MODEL"),
      timeoutMs: millis(env, "AI_TIMEOUT_MS"),
    },
    dynamicRouting: {
      enabled: flag(env, "DYNAMIC_ROUTING"),
      scope,
      scheduleApiUrl: text(env, "SCHEDULE_API_URL").replace(/\/+$/, ""),
      timeoutMs: millis(env, "SCHEDULE_TIMEOUT_MS"),
    },
    replies: {
      enabled: flag(env, "EMAIL_REPLIES"),
      pilot: flag(env, "EMAIL_REPLIES_PILOT"),
      pilotUsers: list(env, "EMAIL_REPLIES_PILOT_USERS"),
      sendUrl: text(env, "REPLY_SEND_URL"),
      fromAddress: text(env, "REPLY_FROM_ADDRESS"),
      ratePerMinute: millis(env, "REPLY_RATE_LIMIT_PER_MINUTE"),
      signingSecretBound: Boolean(env.REPLY_SIGNING_SECRET),
    },
    interactiveButtons: flag(env, "INTERACTIVE_BUTTONS"),
    metrics: { pushUrl: text(env, "METRICS_PUSH_URL") },
  };
}

/** What /health reports: effective flags, never a secret value. */
export function describeFlags(config) {
  return {
    LEGACY_BRIDGE: config.legacyBridge,
    AI_ANALYSIS: config.ai.flag,
    ai_active: config.ai.enabled,
    OPENAI_API_KEY_bound: config.ai.keyBound,
    DYNAMIC_ROUTING: config.dynamicRouting.enabled,
    DYNAMIC_ROUTING_SCOPE: config.dynamicRouting.scope,
    EMAIL_REPLIES: config.replies.enabled,
    EMAIL_REPLIES_PILOT: config.replies.pilot,
    INTERACTIVE_BUTTONS: config.interactiveButtons,
  };
}
