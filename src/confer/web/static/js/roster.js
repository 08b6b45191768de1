// Who is in the room: people by user_id, each with their sessions (tabs, devices) by peer_id.
// Pure state, fed by room-info / user-joined / user-left and the moderation messages.

export const ROLE_NAMES = { host: 'Host', co_host: 'Co-host', participant: 'Participant', audience: 'Audience' };

export function displayName(p) {
  return (p && (p.full_name || p.username)) || 'Someone';
}

export class Roster extends EventTarget {
  constructor(selfId) {
    super();
    this.selfId = selfId;
    this.people = new Map();
  }

  changed(kind, person) {
    this.dispatchEvent(new CustomEvent('change', { detail: { kind, person } }));
  }

  get self() {
    return this.people.get(this.selfId);
  }

  /** Replace everything with a room-info participant list. */
  reset(entries) {
    this.people.clear();
    for (const e of entries) this.upsert(e, false);
    this.changed('reset');
  }

  /** Add or refresh a session; returns true when this person was not in the room before. */
  upsert(entry, announce = true) {
    const uid = entry.user_id;
    let p = this.people.get(uid);
    const isNew = !p;
    if (!p) {
      p = {
        user_id: uid, username: entry.username, full_name: entry.full_name || '', role: entry.role || 'participant',
        audio_muted: false, video_muted: false, sharing: false, sessions: new Map(),
      };
      this.people.set(uid, p);
    }
    for (const k of ['username', 'full_name', 'role', 'audio_muted', 'video_muted', 'sharing']) {
      if (entry[k] !== undefined && entry[k] !== null) p[k] = entry[k];
    }
    if (entry.peer_id || entry.session_id) {
      p.sessions.set(entry.peer_id || entry.session_id, { peer_id: entry.peer_id, session_id: entry.session_id });
    }
    if (announce) this.changed(isNew ? 'joined' : 'updated', p);
    return isNew;
  }

  /** A session left; the person leaves when it was their last one. Returns the person if gone. */
  removeSession({ user_id: uid, peer_id: peerId, session_id: sessionId }) {
    const p = this.people.get(uid);
    if (!p) return null;
    if (peerId || sessionId) {
      for (const [key, sess] of p.sessions) {
        if ((peerId && sess.peer_id === peerId) || (sessionId && sess.session_id === sessionId)) p.sessions.delete(key);
      }
    } else {
      p.sessions.clear();
    }
    if (p.sessions.size > 0 || uid === this.selfId) {
      this.changed('updated', p);
      return null;
    }
    this.people.delete(uid);
    this.changed('left', p);
    return p;
  }

  patch(uid, fields) {
    const p = this.people.get(uid);
    if (!p) return null;
    Object.assign(p, fields);
    this.changed('updated', p);
    return p;
  }

  get(uid) {
    return this.people.get(uid);
  }

  list() {
    const order = { host: 0, co_host: 1, participant: 2, audience: 3 };
    return [...this.people.values()].sort((a, b) => (order[a.role] ?? 9) - (order[b.role] ?? 9)
      || displayName(a).localeCompare(displayName(b)));
  }

  get size() {
    return this.people.size;
  }
}
