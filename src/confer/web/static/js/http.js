// One HTTP round trip with the contract's envelope: returns `data` or throws ApiError.

import { ApiError } from './errors.js';

export const API = '/api/v1';
const TIMEOUT_MS = 20000;

export async function call(method, path, { body, token, form } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(API + path, { method, headers, body: payload, signal: ctl.signal });
  } finally {
    clearTimeout(timer);
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = null; // a proxy's HTML error page, an empty body...
  }
  if (response.ok && envelope && 'data' in envelope) return envelope.data;
  throw new ApiError({
    status: response.status,
    code: envelope?.code,
    message: envelope?.message,
    type: envelope?.error?.type,
    details: envelope?.error?.details,
    retryAfter: response.headers.get('Retry-After'),
  });
}
