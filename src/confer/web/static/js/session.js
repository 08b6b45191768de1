// The logged-in session: tokens in localStorage, refreshed before the access token expires.
//
// Refresh tokens rotate and a reused one revokes its whole family, so tabs of the same browser
// must never spend the same refresh token twice: refreshes run under a Web Lock and re-read
// storage inside it, adopting what another tab already obtained.

import { ApiError } from './errors.js';
import { call } from './http.js';

const KEY = 'confer.session';
const LOCK = 'confer.token-refresh';
const MAX_MARGIN_MS = 5 * 60 * 1000;

const listeners = new Set();
let timer = null;
let inflight = null;

function read() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

function write(value) {
  if (value) localStorage.setItem(KEY, JSON.stringify(value));
  else localStorage.removeItem(KEY);
}

function emit(reason) {
  for (const fn of listeners) fn(current(), reason);
}

/** Refresh when a quarter of the lifetime is left (at most 5 minutes before expiry). */
function refreshAt(s) {
  const margin = Math.min(MAX_MARGIN_MS, Math.max(1000, (s.ttl_ms || 0) / 4));
  return s.expires_at - margin;
}

function schedule() {
  clearTimeout(timer);
  const s = read();
  if (!s) return;
  const wait = Math.max(0, refreshAt(s) - Date.now());
  timer = setTimeout(() => refresh().catch(() => {}), Math.min(wait, 2 ** 31 - 1));
}

export function current() {
  return read();
}

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const FRESH_MS = 5000;

/** True for a few seconds after login, while the server may still be committing it. */
export function isFresh() {
  const s = read();
  return Boolean(s && Date.now() - (s.started_at || 0) < FRESH_MS);
}

/** Store what login / register returned. */
export function start(data) {
  const ttl = (data.expires_in || 86400) * 1000;
  write({
    user_id: data.user_id,
    username: data.username,
    email: data.email,
    token: data.token,
    refresh_token: data.refresh_token,
    ttl_ms: ttl,
    expires_at: Date.now() + ttl,
    started_at: Date.now(),
  });
  schedule();
  emit('login');
}

export function end(reason = 'logout') {
  clearTimeout(timer);
  write(null);
  emit(reason);
}

async function withLock(fn) {
  if (navigator.locks?.request) return navigator.locks.request(LOCK, fn);
  return fn();
}

/** Exchange the refresh token; `force` even when the access token still looks fresh. */
export function refresh(force = false) {
  if (inflight) return inflight;
  const seen = read();
  inflight = withLock(async () => {
    const s = read();
    if (!s) throw new ApiError({ status: 401, code: 10004, message: 'Not logged in' });
    // Another tab refreshed while we waited for the lock.
    if (seen && s.refresh_token !== seen.refresh_token) return s;
    if (!force && Date.now() < refreshAt(s)) return s;
    try {
      const data = await call('POST', '/auth/refresh', { body: { refresh_token: s.refresh_token } });
      const ttl = (data.expires_in || 86400) * 1000;
      const next = {
        ...s, token: data.token, refresh_token: data.refresh_token, ttl_ms: ttl,
        expires_at: Date.now() + ttl,
      };
      write(next);
      return next;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        // The refresh token is gone (expired, revoked, or another device logged out).
        const latest = read();
        if (latest && latest.refresh_token !== s.refresh_token) return latest;
        end('expired');
      } else {
        setTimeout(() => refresh().catch(() => {}), 5000); // offline: try again soon
      }
      throw err;
    }
  }).finally(() => {
    inflight = null;
    schedule();
  });
  return inflight;
}

/** An access token that is valid for a while yet, refreshing first when it is not. */
export async function accessToken() {
  const s = read();
  if (!s) throw new ApiError({ status: 401, code: 10004, message: 'Not logged in' });
  if (Date.now() >= refreshAt(s)) return (await refresh()).token;
  return s.token;
}

// Other tabs: a login, refresh or logout there is ours too.
window.addEventListener('storage', (e) => {
  if (e.key !== KEY) return;
  schedule();
  emit(e.newValue ? 'sync' : 'logout');
});

// Timers stall while a laptop sleeps; catch up as soon as the page is visible again.
document.addEventListener('visibilitychange', () => {
  const s = read();
  if (document.visibilityState === 'visible' && s && Date.now() >= refreshAt(s)) {
    refresh().catch(() => {});
  }
});

schedule();
