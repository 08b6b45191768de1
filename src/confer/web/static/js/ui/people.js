// The participants panel: everyone with their role and media state, and the moderation
// actions the viewer's role allows (the server checks again; this only hides what would fail).

import { h, icon, initials, replace } from '../dom.js';
import { displayName, ROLE_NAMES } from '../roster.js';

const RANK = { host: 3, co_host: 2, participant: 1, audience: 0 };

/** What `viewer` may do to `target` (mirrors services/roles.py and services/participants.py). */
export function allowedActions(viewerRole, target, selfId) {
  if (target.user_id === selfId || target.role === 'host') return [];
  const out = [];
  const isHost = viewerRole === 'host';
  const moderates = isHost || (viewerRole === 'co_host' && RANK[target.role] < RANK.co_host);
  if (moderates && target.role !== 'audience') {
    if (!target.audio_muted) out.push(['mute', 'Mute']);
    if (!target.video_muted) out.push(['stop-video', 'Stop video']);
  }
  if (moderates && target.role === 'participant') {
    out.push(target.can_share_screen ? ['revoke-share', 'Stop screen sharing rights'] : ['grant-share', 'Allow screen sharing']);
  }
  if (isHost) {
    if (target.role !== 'co_host') out.push(['co_host', 'Make co-host']);
    if (target.role !== 'participant') out.push(['participant', target.role === 'audience' ? 'Let them speak (participant)' : 'Make participant']);
    if (target.role !== 'audience') out.push(['audience', 'Move to audience']);
    out.push(['kick', 'Remove from meeting']);
  }
  return out;
}

export class PeoplePanel {
  /** act(action, person) -> Promise; muteAll() -> Promise. */
  constructor({ roster, act, muteAll }) {
    this.roster = roster;
    this.act = act;
    this.muteAllFn = muteAll;
    this.viewerRole = 'participant';
    this.list = h('ul', { class: 'people-list', id: 'people-list' });
    this.count = h('span', { class: 'muted', id: 'people-count' });
    this.muteAllBtn = h('button', { type: 'button', id: 'mute-all', hidden: true, onclick: () => this.muteAllFn() }, 'Mute all');
    this.el = h('section', { class: 'panel people-panel', id: 'people-panel', 'aria-label': 'Participants' },
      h('div', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, 'People ', this.count), this.muteAllBtn),
      this.list);
    roster.addEventListener('change', () => this.render());
  }

  setViewerRole(role) {
    this.viewerRole = role;
    this.render();
  }

  render() {
    const people = this.roster.list();
    this.count.textContent = `(${people.length})`;
    this.muteAllBtn.hidden = this.viewerRole !== 'host';
    replace(this.list, people.map((p) => this.row(p)));
  }

  row(p) {
    const self = p.user_id === this.roster.selfId;
    const actions = allowedActions(this.viewerRole, p, this.roster.selfId);
    let menu = null;
    if (actions.length) {
      const select = h('select', {
        class: 'person-actions', 'aria-label': `Actions for ${displayName(p)}`,
        dataset: { userId: String(p.user_id) },
        onchange: async (e) => {
          const action = e.target.value;
          e.target.value = '';
          if (action) await this.act(action, p);
        },
      }, h('option', { value: '' }, 'Actions…'), actions.map(([value, label]) => h('option', { value }, label)));
      menu = select;
    }
    return h('li', { class: 'person', dataset: { userId: String(p.user_id), role: p.role } },
      h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(displayName(p))),
      h('div', { class: 'person-main' },
        h('span', { class: 'person-name' }, displayName(p), self ? ' (you)' : ''),
        h('span', { class: `role role-${p.role}` }, ROLE_NAMES[p.role] || p.role)),
      h('span', { class: 'person-state' },
        p.sharing ? h('span', { title: 'Sharing the screen' }, icon('screen', 'sharing the screen')) : null,
        p.role === 'audience' ? null : icon(p.audio_muted ? 'micOff' : 'mic', p.audio_muted ? 'microphone off' : 'microphone on'),
        p.role === 'audience' ? null : icon(p.video_muted ? 'camOff' : 'cam', p.video_muted ? 'camera off' : 'camera on')),
      menu);
  }
}
