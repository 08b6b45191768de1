// One HTTP round trip with the contract's envelope: returns `data` or throws ApiError.

import { ApiError } from './errors.js';

export const API = '/api/v1';
const TIMEOUT_MS = 20000;

export async function call(method, path, { body, token, form } = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await send(method, path, headers, token, payload);
  const envelope = await envelopeOf(response);
  if (response.ok && envelope && 'data' in envelope) return envelope.data;
  throw failure(response, envelope);
}

/** A GET whose body is a file (a transcript's .vtt / .srt): the Blob, or throws ApiError. */
export async function fetchBlob(path, { token } = {}) {
  const response = await send('GET', path, { Accept: '*/*' }, token);
  if (response.ok) return response.blob();
  throw failure(response, await envelopeOf(response));
}

async function send(method, path, headers, token, payload) {
  if (token) headers.Authorization = `Bearer ${token}`;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    return await fetch(API + path, { method, headers, body: payload, signal: ctl.signal });
  } finally {
    clearTimeout(timer);
  }
}

async function envelopeOf(response) {
  try {
    return await response.json();
  } catch {
    return null; // a proxy's HTML error page, an empty body...
  }
}

function failure(response, envelope) {
  return new ApiError({
    status: response.status,
    code: envelope?.code,
    message: envelope?.message,
    type: envelope?.error?.type,
    details: envelope?.error?.details,
    retryAfter: response.headers.get('Retry-After'),
  });
}
