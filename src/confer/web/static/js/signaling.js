// The /ws/signaling protocol: the contract's envelope, join-room, heartbeat every 30 s, and
// reconnecting within 3 s with the same session_id / peer_id so the server resumes the session.

import { SignalingError } from './errors.js';
import * as session from './session.js';

export const T = {
  OFFER: 1, ANSWER: 2, ICE: 3, JOIN: 4, LEAVE: 5, USER_JOINED: 6, USER_LEFT: 7, CHAT: 8,
  SCREEN_SHARE: 9, MEDIA_CONTROL: 10, PING: 11, PONG: 12, ERROR: 13, ROOM_INFO: 14,
  ROLE_CHANGED: 15, KICKED: 16, MEETING_ENDED: 17, MEETING_UPDATED: 18, CAPTION: 40,
};

// Close codes after which reconnecting cannot help (docs/protocol.md).
const FINAL_CLOSES = {
  4003: 'forbidden', 4004: 'not-found', 4005: 'ended', 4006: 'kicked', 4007: 'replaced', 4010: 'abuse',
};
const TOKEN_CLOSES = new Set([4001, 4002]);

export const HEARTBEAT_MS = 30000;
const SILENCE_MS = 60000;
const FIRST_RETRY_MS = [300, 1500]; // the contract: try again within 3 s
const MAX_RETRY_MS = 5000;

function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Events (CustomEvent, detail = message or info):
 *   message        every server message (detail: envelope)
 *   state          'connecting' | 'open' | 'reconnecting' | 'closed'  (detail: {state, ...})
 *   final          the server ended this session for good (detail: {reason, code, text})
 */
export class Signaling extends EventTarget {
  constructor({ meetingId, userId, peerId, sessionId }) {
    super();
    this.meetingId = meetingId;
    this.userId = userId;
    this.peerId = peerId || newId('peer_');
    this.sessionId = sessionId || null;
    this.ws = null;
    this.state = 'idle';
    this.closedByUs = false;
    this.attempt = 0;
    this.lastHeard = 0;
    this.heartbeat = null;
    this.retryTimer = null;
    this.onOnline = () => { if (this.state === 'reconnecting') this.reconnectNow(); };
    window.addEventListener('online', this.onOnline);
  }

  setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...extra } }));
  }

  async connect() {
    this.closedByUs = false;
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    let token;
    try {
      token = await session.accessToken();
    } catch (err) {
      this.finish('auth', 4001, 'Your session has expired. Please log in again.');
      return;
    }
    if (this.closedByUs) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({
      token, meeting_id: String(this.meetingId), user_id: String(this.userId), peer_id: this.peerId,
    });
    if (this.sessionId) q.set('session_id', this.sessionId);
    const ws = new WebSocket(`${proto}//${location.host}/ws/signaling?${q}`);
    this.ws = ws;
    this.refusal = null;
    let opened = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      this.send(T.JOIN, { meeting_id: this.meetingId, user_id: this.userId, peer_id: this.peerId });
      this.startHeartbeat();
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg.type === T.ERROR && !opened) this.refusal = msg.payload;
      if (msg.type === T.ROOM_INFO && !opened) {
        // The server sends room-info on connect (and again for our join-room): the first one
        // opens the session; `resumed` says whether the server kept it across the drop.
        opened = true;
        if (msg.payload?.session_id) this.sessionId = msg.payload.session_id;
        this.adoptTimers(msg.payload || {});
        const reconnected = this.attempt > 0;
        this.attempt = 0;
        this.setState('open', { reconnected, resumed: Boolean(msg.payload?.resumed), info: msg.payload });
      }
      this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.stopHeartbeat();
      if (this.closedByUs) return;
      if (FINAL_CLOSES[e.code]) {
        this.finish(FINAL_CLOSES[e.code], e.code, this.refusal?.message || e.reason);
        return;
      }
      if (e.code === 4000 && this.refusal) {
        this.finish('refused', e.code, this.refusal.message);
        return;
      }
      if (TOKEN_CLOSES.has(e.code)) {
        // The access token expired under us: refresh, then come straight back.
        session.refresh(true).then(() => this.scheduleReconnect(), () => {
          this.finish('auth', e.code, 'Your session has expired. Please log in again.');
        });
        return;
      }
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.closedByUs) return;
    this.attempt += 1;
    const [lo, hi] = FIRST_RETRY_MS;
    const delay = this.attempt === 1
      ? lo + Math.random() * (hi - lo)
      : Math.min(MAX_RETRY_MS, 1000 * 2 ** (this.attempt - 2)) * (0.75 + Math.random() / 2);
    this.setState('reconnecting', { attempt: this.attempt, delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    if (!this.ws) this.connect();
  }

  /** The server says how often it wants a ping (the contract's 30 s unless configured). */
  adoptTimers(info) {
    const every = Number(info.heartbeat_interval) * 1000;
    const idle = Number(info.idle_timeout) * 1000;
    const heartbeatMs = every > 0 ? Math.min(HEARTBEAT_MS, Math.max(1000, every)) : HEARTBEAT_MS;
    this.silenceMs = idle > 0 ? Math.max(idle, 2 * heartbeatMs) : SILENCE_MS;
    if (heartbeatMs !== this.heartbeatMs) {
      this.heartbeatMs = heartbeatMs;
      this.startHeartbeat();
    }
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > (this.silenceMs || SILENCE_MS)) {
        // Nothing heard for a minute: the socket is dead even if the browser has not noticed.
        this.ws?.close(4000, 'heartbeat timeout');
        const ws = this.ws;
        this.ws = null;
        if (ws) ws.onclose = null;
        this.stopHeartbeat();
        this.scheduleReconnect();
        return;
      }
      this.send(T.PING, {});
    }, this.heartbeatMs || HEARTBEAT_MS);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Send one message in the contract's envelope; its id, or false when the socket is closed. */
  send(type, payload, { toUserId, toPeerId } = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    const env = {
      id: newId('msg_'),
      type,
      from_user_id: this.userId,
      meeting_id: this.meetingId,
      session_id: this.sessionId || undefined,
      peer_id: this.peerId,
      payload,
      timestamp: new Date().toISOString(),
    };
    if (toUserId !== undefined) env.to_user_id = toUserId;
    if (toPeerId) env.to_peer_id = toPeerId;
    ws.send(JSON.stringify(env));
    return env.id;
  }

  finish(reason, code, text) {
    this.close();
    this.dispatchEvent(new CustomEvent('final', { detail: { reason, code, text } }));
  }

  /** Leave for good: a leave-room, then close (no reconnect). */
  leave() {
    this.send(T.LEAVE, { meeting_id: this.meetingId, user_id: this.userId, peer_id: this.peerId });
    this.close(1000, 'left');
  }

  close(code = 1000, reason = 'closed') {
    this.closedByUs = true;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    window.removeEventListener('online', this.onOnline);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
    this.setState('closed');
  }
}

/** An `error` (13) message as an Error carrying its code and plain words. */
export function errorOf(msg) {
  const p = msg.payload || {};
  return new SignalingError(p.code, p.message, p.details);
}
