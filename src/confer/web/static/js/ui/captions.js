// Live captions (signaling type 40, docs/protocol.md) and the meeting transcript panel.
// Caption text is speech recognised from other people: it only ever becomes text nodes.

import { call, fetchBlob } from '../http.js';
import { h, replace } from '../dom.js';
import { displayName } from '../roster.js';
import * as session from '../session.js';

const SHOWN_LINES = 3;
const LINE_TTL_MS = 12000; // a caption leaves the overlay this long after its last update
const PREF_KEY = 'confer.captions';

/** The overlay over the video grid: the last few utterances, partials replaced in place. */
export class CaptionsOverlay {
  constructor({ roster }) {
    this.roster = roster;
    this.lines = new Map(); // utterance_id -> {el, text, at, final}
    this.on = localStorage.getItem(PREF_KEY) !== 'off';
    this.available = false;
    this.list = h('div', { class: 'caption-lines' });
    this.el = h('div', {
      class: 'captions', id: 'captions', role: 'log', 'aria-live': 'polite', 'aria-label': 'Live captions', hidden: true,
    }, this.list);
    this.timer = setInterval(() => this.expire(), 1000);
  }

  /** Shown only in meetings with AI analysis, and when the viewer has not turned them off. */
  setAvailable(available) {
    this.available = Boolean(available);
    this.render();
  }

  setOn(on) {
    this.on = Boolean(on);
    localStorage.setItem(PREF_KEY, this.on ? 'on' : 'off');
    this.render();
  }

  /** A type-40 payload. A final replaces the partials of its utterance; an empty final drops them. */
  add(p) {
    if (!p || typeof p.utterance_id !== 'string') return;
    const text = typeof p.text === 'string' ? p.text.trim() : '';
    const prev = this.lines.get(p.utterance_id);
    if (prev?.final && !p.final) return; // a late partial never overwrites its final
    if (!text) {
      if (p.final && prev) this.lines.delete(p.utterance_id);
      this.render();
      return;
    }
    const person = this.roster.get(p.user_id);
    const name = person ? displayName(person) : `User ${p.user_id}`;
    this.lines.delete(p.utterance_id); // re-inserted last: the Map keeps arrival order
    this.lines.set(p.utterance_id, {
      name, text, final: Boolean(p.final), at: Date.now(), userId: p.user_id,
    });
    while (this.lines.size > SHOWN_LINES * 4) this.lines.delete(this.lines.keys().next().value);
    this.render();
  }

  expire() {
    const now = Date.now();
    let changed = false;
    for (const [id, line] of this.lines) {
      if (now - line.at > LINE_TTL_MS) { // a partial whose final never came goes too
        this.lines.delete(id);
        changed = true;
      }
    }
    if (changed) this.render();
  }

  render() {
    const recent = [...this.lines.entries()].slice(-SHOWN_LINES);
    replace(this.list, recent.map(([id, line]) => h('p', {
      class: line.final ? 'caption-line' : 'caption-line partial',
      dataset: { utteranceId: id, userId: String(line.userId), final: String(line.final) },
    }, h('span', { class: 'caption-speaker' }, line.name), h('span', { class: 'caption-text' }, line.text))));
    this.el.hidden = !(this.available && this.on && recent.length > 0);
  }

  destroy() {
    clearInterval(this.timer);
  }
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** The transcript side panel: final captions stored by the server, and caption-file downloads. */
export class TranscriptPanel {
  constructor({ meetingId }) {
    this.meetingId = meetingId;
    this.list = h('ol', { class: 'transcript-list', id: 'transcript-list' });
    this.status = h('p', { class: 'muted', id: 'transcript-status', role: 'status' });
    const download = (fmt) => h('button', {
      type: 'button', class: 'link-button', id: `transcript-${fmt}`, onclick: () => this.download(fmt),
    }, `Download .${fmt}`);
    this.el = h('section', { class: 'panel transcript-panel', id: 'transcript-panel', 'aria-label': 'Transcript' },
      h('div', { class: 'panel-head' },
        h('h2', { class: 'panel-title' }, 'Transcript'),
        h('button', { type: 'button', id: 'transcript-refresh', onclick: () => this.load() }, 'Refresh')),
      h('div', { class: 'transcript-downloads' }, download('vtt'), download('srt')),
      this.status,
      this.list);
  }

  async load() {
    this.status.textContent = 'Loading…';
    try {
      const data = await call('GET', `/meetings/${encodeURIComponent(this.meetingId)}/transcript`, {
        token: await session.accessToken(),
      });
      const segments = Array.isArray(data?.segments) ? data.segments : [];
      replace(this.list, segments.map((s) => h('li', { class: 'transcript-item', dataset: { segmentId: String(s.segment_id) } },
        h('span', { class: 'transcript-time' }, clock(s.start)),
        h('span', { class: 'transcript-speaker' }, String(s.speaker_name || `User ${s.user_id}`)),
        h('span', { class: 'transcript-text' }, String(s.text || '')))));
      this.status.textContent = segments.length === 1 ? '1 caption' : segments.length ? `${segments.length} captions` : 'Nothing has been transcribed yet.';
    } catch (err) {
      this.status.textContent = `Could not load the transcript: ${err.message || err}`;
    }
  }

  /** The downloads need the bearer token, so they go through fetch and a local object URL. */
  async download(fmt) {
    try {
      const blob = await fetchBlob(`/meetings/${encodeURIComponent(this.meetingId)}/transcript.${fmt}`, {
        token: await session.accessToken(),
      });
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `meeting-${this.meetingId}-transcript.${fmt}`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      this.status.textContent = `Could not download the transcript: ${err.message || err}`;
    }
  }
}

/** `/meetings/{id}/transcript`: the transcript outside the room (e.g. after the meeting). */
export async function renderTranscriptPage(root, { navigate, params }) {
  const meetingId = Number(params[0]);
  const back = h('a', { href: '/', onclick: (e) => { e.preventDefault(); navigate('/'); } }, 'Back to your meetings');
  if (!Number.isInteger(meetingId) || meetingId <= 0) {
    replace(root, h('section', { class: 'screen narrow' }, h('h1', {}, 'Page not found'), h('p', {}, back)));
    return;
  }
  const panel = new TranscriptPanel({ meetingId });
  replace(root, h('section', { class: 'screen narrow transcript-page', id: 'transcript-page' },
    h('p', {}, back), h('div', { class: 'card' }, panel.el)));
  await panel.load();
}
