/**
 * Hard time limits on outside calls: no Telegram, AI or schedule API outage may
 * hold an email longer than its budget.
 */

export class DeadlineExceeded extends Error {
  constructor(what, ms) {
    super(`${what} did not answer within ${ms} ms`);
    this.name = "DeadlineExceeded";
  }
}

/**
 * POST/GET `url` and read its JSON body, all within one budget of `ms`.
 *
 * Resolves to {ok, status, body} (body is null when it is not JSON); rejects with
 * DeadlineExceeded on timeout or with the network error. The budget covers the
 * body too: a server may send its headers, then stall.
 */
export async function callJson(ms, what, url, init = {}) {
  const controller = new AbortController();
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new DeadlineExceeded(what, ms));
    }, ms);
  });
  const call = (async () => {
    const response = await fetch(url, { ...init, signal: controller.signal });
    const raw = await response.text();
    let body = null;
    try {
      body = raw ? JSON.parse(raw) : null;
    } catch {
      body = null;
    }
    return { ok: response.ok, status: response.status, body };
  })();
  try {
    return await Promise.race([call, expired]);
  } finally {
    clearTimeout(timer);
    call.catch(() => {}); // the loser of the race must not surface as an unhandled rejection
  }
}

/** Resolve with `promise`'s value, or reject with DeadlineExceeded after `ms`. */
export async function within(ms, what, promise) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(what, ms)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
