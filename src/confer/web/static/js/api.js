// The REST API (the contract's /api/v1), authenticated with a token that is kept fresh.

import { ApiError } from './errors.js';
import { call } from './http.js';
import * as session from './session.js';

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

async function authed(method, path, opts = {}) {
  const token = await session.accessToken();
  try {
    return await call(method, path, { ...opts, token });
  } catch (err) {
    // Just after login the server may not have committed the new account or token yet
    // (its unit of work ends after the response): give it a moment before doubting the token.
    if (err instanceof ApiError && err.status === 401 && session.isFresh()) {
      for (const wait of [150, 400, 1000]) {
        await sleep(wait);
        try {
          return await call(method, path, { ...opts, token: session.current()?.token || token });
        } catch (again) {
          if (!(again instanceof ApiError && again.status === 401)) throw again;
        }
      }
    }
    // The server may disagree with our clock about expiry: refresh once and retry.
    if (err instanceof ApiError && err.status === 401 && (err.code === 10005 || err.code === 10004)) {
      const s = await session.refresh(true);
      return call(method, path, { ...opts, token: s.token });
    }
    throw err;
  }
}

const enc = encodeURIComponent;

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const auth = {
  async register(body) {
    const data = await call('POST', '/auth/register', { body });
    session.start(data);
    return data;
  },
  async login(username, password) {
    const data = await call('POST', '/auth/login', { body: { username, password } });
    session.start(data);
    return data;
  },
  async logout() {
    const s = session.current();
    try {
      if (s) await call('POST', '/auth/logout', { body: { refresh_token: s.refresh_token }, token: s.token });
    } finally {
      session.end('logout');
    }
  },
};

/** The AI service's state: can this server caption at all? */
export const ai = {
  status: () => authed('GET', '/ai/status'),
};

export const users = {
  profile: () => authed('GET', '/users/profile'),
  updateProfile: (body) => authed('PUT', '/users/profile', { body }),
  changePassword: (body) => authed('PUT', '/users/password', { body }),
};

export const meetings = {
  list: ({ status, page = 1, pageSize = 10 } = {}) =>
    authed('GET', `/meetings${query({ status, page, page_size: pageSize })}`),
  create: (body) => authed('POST', '/meetings', { body }),
  get: (id) => authed('GET', `/meetings/${enc(id)}`),
  byCode: (code) => authed('GET', `/meetings/code/${enc(code)}`),
  join: (id, password) => authed('POST', `/meetings/${enc(id)}/join`, { body: password ? { password } : {} }),
  leave: (id) => authed('POST', `/meetings/${enc(id)}/leave`, { body: {} }),
  end: (id) => authed('POST', `/meetings/${enc(id)}/end`, { body: {} }),
  participants: (id, state = 'joined') => authed('GET', `/meetings/${enc(id)}/participants${query({ state, page_size: 100 })}`),
  messages: (id, { before, pageSize = 50 } = {}) =>
    authed('GET', `/meetings/${enc(id)}/messages${query({ before_id: before, page_size: pageSize })}`),
  kick: (id, participantId, reason) =>
    authed('POST', `/meetings/${enc(id)}/participants/${enc(participantId)}/kick`, { body: reason ? { reason } : {} }),
  mute: (id, participantId, mediaType = 'audio') =>
    authed('POST', `/meetings/${enc(id)}/participants/${enc(participantId)}/mute`, { body: { media_type: mediaType } }),
  muteAll: (id, mediaType = 'audio') =>
    authed('POST', `/meetings/${enc(id)}/mute-all`, { body: { media_type: mediaType } }),
  setRole: (id, participantId, role) =>
    authed('PUT', `/meetings/${enc(id)}/participants/${enc(participantId)}/role`, { body: { role } }),
  screenShare: (id, participantId, allowed) =>
    authed('PUT', `/meetings/${enc(id)}/participants/${enc(participantId)}/screen-share`, { body: { allowed } }),
};
