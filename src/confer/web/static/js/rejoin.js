// Remembering, per tab, the meeting we are in, so that a reload goes straight back into it
// with the same peer_id (the signaling server can then resume the session).

const KEY = 'confer.active-meeting';

export function rememberActive(entry) {
  sessionStorage.setItem(KEY, JSON.stringify({ ...entry, at: Date.now() }));
}

export function updateActive(fields) {
  const cur = readActive();
  if (cur) rememberActive({ ...cur, ...fields });
}

function readActive() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

/** The remembered entry for this meeting, or null. */
export function activeMeeting(meetingId) {
  const cur = readActive();
  return cur && cur.meeting_id === meetingId ? cur : null;
}

export function forgetActive() {
  sessionStorage.removeItem(KEY);
}
