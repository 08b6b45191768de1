// Every failure a user can meet, in plain words: API envelopes, signaling errors, devices.

const BY_CODE = {
  10001: 'The username or password is wrong.',
  10002: 'There is no such user.',
  10003: 'That username or e-mail address is already registered.',
  10004: 'Your session is no longer valid. Please log in again.',
  10005: 'Your session has expired. Please log in again.',
  20001: 'There is no meeting with that code. Check the link or code and try again.',
  20002: 'This meeting has ended.',
  20003: 'This meeting is full.',
  20004: 'The meeting password is wrong.',
  30001: 'The file could not be uploaded. Please try again.',
  30002: 'That kind of file is not supported.',
  30003: 'That file is too large.',
  40001: 'The AI service is not available right now.',
  40002: 'The AI service could not process that.',
};

const BY_STATUS = {
  401: 'Please log in again.',
  403: 'You are not allowed to do that.',
  404: 'That could not be found.',
  409: 'That conflicts with something that already exists.',
  413: 'That is too large.',
  429: 'Too many requests. Please wait a moment and try again.',
  500: 'The server ran into a problem. Please try again.',
  502: 'The server is not reachable right now. Please try again shortly.',
  503: 'The service is unavailable right now. Please try again shortly.',
  504: 'The server took too long to answer. Please try again.',
};

const FIELD_NAMES = {
  username: 'Username', email: 'E-mail', password: 'Password', full_name: 'Full name',
  title: 'Title', description: 'Description', start_time: 'Start time', duration: 'Duration',
  max_participants: 'Maximum participants', avatar_url: 'Avatar URL', content: 'Message',
  current_password: 'Current password', new_password: 'New password',
};

/** An error from the REST API, carrying the envelope's fields. */
export class ApiError extends Error {
  constructor({ status, code, message, type, details, retryAfter }) {
    super(message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.type = type;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

/** An `error` (type 13) message from signaling, or a broken connection. */
export class SignalingError extends Error {
  constructor(code, message, details) {
    super(message || 'Signaling error');
    this.name = 'SignalingError';
    this.code = code;
    this.details = details;
  }
}

function fieldName(field) {
  const last = String(field || '').split('.').pop();
  return FIELD_NAMES[last] || last.replace(/_/g, ' ');
}

function sentence(text) {
  const t = String(text).trim();
  if (!t) return t;
  const capital = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

function validationWords(details) {
  if (Array.isArray(details)) {
    return details.map((d) => {
      if (typeof d === 'string') return sentence(d);
      if (d && typeof d === 'object') {
        const msg = String(d.message || d.msg || 'is not valid').replace(/^Value error, /, '');
        return d.field && d.field !== 'body' ? `${fieldName(d.field)}: ${sentence(msg)}` : sentence(msg);
      }
      return '';
    }).filter(Boolean).join(' ');
  }
  return typeof details === 'string' ? sentence(details) : '';
}

/** Plain words for anything thrown: never a stack trace, never "[object Object]". */
export function describe(err) {
  if (!err) return 'Something went wrong. Please try again.';
  if (err instanceof ApiError || err instanceof SignalingError) {
    if (BY_CODE[err.code]) return BY_CODE[err.code];
    if (err instanceof ApiError && err.status === 400) {
      return validationWords(err.details) || sentence(err.message) || 'The request was not valid.';
    }
    if (err instanceof ApiError && err.status === 429 && err.retryAfter) {
      return `Too many requests. Please wait ${err.retryAfter} seconds and try again.`;
    }
    if (err instanceof ApiError && BY_STATUS[err.status]) {
      const generic = BY_STATUS[err.status];
      // A specific server message (e.g. "Only the host can end the meeting") beats the generic.
      return err.status < 500 && err.message && !/^HTTP \d+$/.test(err.message)
        && err.message.toLowerCase() !== 'forbidden' ? sentence(err.message) : generic;
    }
    return sentence(err.message) || 'Something went wrong. Please try again.';
  }
  if (err.name === 'NotAllowedError') {
    return 'Camera or microphone access was blocked. Allow it in the browser\'s site settings, or join without them.';
  }
  if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') {
    return 'No camera or microphone was found. You can still join without them.';
  }
  if (err.name === 'NotSupportedError') {
    return window.isSecureContext
      ? 'This browser cannot use a camera or microphone here.'
      : 'Cameras and microphones only work over https. Open this page with an https:// address.';
  }
  if (err.name === 'NotReadableError') {
    return 'The camera or microphone is busy in another application.';
  }
  if (err.name === 'AbortError') return 'That took too long. Please try again.';
  if (err instanceof TypeError && /fetch|network/i.test(err.message)) {
    return 'Cannot reach the server. Check your connection and try again.';
  }
  return 'Something went wrong. Please try again.';
}
