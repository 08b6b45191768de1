// Home: join by code, the meetings list (upcoming / live / ended, paged), and a new meeting.

import { meetings } from '../api.js';
import { h, replace } from '../dom.js';
import { copyText, inviteUrl, parseCode } from '../invite.js';
import { renderCreateForm } from './create.js';
import { errorLine, notify } from './notices.js';

const TABS = [
  ['scheduled', 'Upcoming'],
  ['active', 'Live'],
  ['ended', 'Ended'],
];
const PAGE_SIZE = 10;

function when(iso) {
  if (!iso) return 'No start time';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

function joinByCode(navigate) {
  const input = h('input', {
    id: 'join-code', name: 'code', placeholder: 'ABC-DEF-GHI or an invite link',
    autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', maxlength: 300,
    'aria-label': 'Meeting code or invite link',
  });
  const error = errorLine();
  const form = h('form', { class: 'card join-code', id: 'join-code-form', novalidate: true },
    h('h2', {}, 'Join a meeting'),
    h('div', { class: 'row' }, input, h('button', { class: 'primary', type: 'submit' }, 'Join')),
    error);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const code = parseCode(input.value);
    if (!code) {
      error.show('That is not a meeting code. A code looks like ABC-DEF-GHI.');
      input.focus();
      return;
    }
    navigate(`/join/${code}`);
  });
  return form;
}

export function invitePanel(meeting) {
  const url = inviteUrl(meeting);
  const status = h('span', { class: 'copy-status', role: 'status' });
  return h('div', { class: 'invite' },
    h('code', { class: 'meeting-code' }, meeting.meeting_code || ''),
    h('input', { class: 'invite-link', readonly: true, value: url, 'aria-label': 'Invite link', onfocus: (e) => e.target.select() }),
    h('button', {
      type: 'button', class: 'copy-invite',
      onclick: async () => {
        status.textContent = (await copyText(url)) ? 'Link copied.' : 'Select the link and copy it.';
      },
    }, 'Copy invite link'),
    status);
}

function meetingRow(m, navigate) {
  const code = m.meeting_code;
  const live = m.status === 'active';
  return h('li', { class: `meeting-row status-${m.status}`, dataset: { meetingId: String(m.meeting_id) } },
    h('div', { class: 'meeting-main' },
      h('strong', { class: 'meeting-title' }, m.title),
      h('span', { class: 'muted' },
        `${when(m.start_time)}${m.host_name ? ` · host ${m.host_name}` : ''}`
        + `${live && m.participant_count !== undefined ? ` · ${m.participant_count} in the meeting` : ''}`)),
    h('div', { class: 'meeting-actions' },
      live ? h('span', { class: 'badge live' }, 'Live') : null,
      code && m.status !== 'ended'
        ? h('button', { type: 'button', class: 'link-button', onclick: async () => {
          notify((await copyText(inviteUrl(m))) ? 'Invite link copied.' : 'Could not copy the link.', 'success');
        } }, 'Copy link')
        : null,
      m.settings?.enable_ai_analysis && m.status !== 'scheduled'
        ? h('button', { type: 'button', class: 'link-button transcript-link', onclick: () => navigate(`/meetings/${m.meeting_id}/transcript`) }, 'Transcript')
        : null,
      code && m.status !== 'ended'
        ? h('button', { type: 'button', class: live ? 'primary' : '', onclick: () => navigate(`/join/${code}`) }, live ? 'Join' : 'Start')
        : null));
}

function meetingsList(navigate) {
  const state = { status: 'scheduled', page: 1 };
  const list = h('ul', { class: 'meeting-list', id: 'meeting-list', 'aria-live': 'polite' });
  const pager = h('div', { class: 'pager' });
  const error = errorLine();
  const tabButtons = TABS.map(([status, label]) => h('button', {
    type: 'button', role: 'tab', class: 'tab', dataset: { status },
    onclick: () => { state.status = status; state.page = 1; load(); },
  }, label));

  async function load() {
    tabButtons.forEach((b) => b.setAttribute('aria-selected', String(b.dataset.status === state.status)));
    error.clear();
    replace(list, h('li', { class: 'loading' }, 'Loading…'));
    let data;
    try {
      data = await meetings.list({ status: state.status, page: state.page, pageSize: PAGE_SIZE });
    } catch (err) {
      replace(list);
      error.show(err);
      replace(pager, h('button', { type: 'button', onclick: load }, 'Try again'));
      return;
    }
    const items = data.meetings || data.items || [];
    const total = data.total ?? items.length;
    const pages = data.total_pages ?? Math.max(1, Math.ceil(total / (data.page_size || PAGE_SIZE)));
    if (items.length === 0) {
      const empty = { scheduled: 'No upcoming meetings.', active: 'No meeting is live right now.', ended: 'No ended meetings yet.' };
      replace(list, h('li', { class: 'empty' }, empty[state.status]));
    } else {
      replace(list, items.map((m) => meetingRow(m, navigate)));
    }
    replace(pager,
      h('button', { type: 'button', disabled: state.page <= 1, onclick: () => { state.page -= 1; load(); } }, '‹ Newer'),
      h('span', { class: 'muted' }, `Page ${state.page} of ${Math.max(pages, 1)} · ${total} in all`),
      h('button', { type: 'button', disabled: state.page >= pages, onclick: () => { state.page += 1; load(); } }, 'Older ›'));
  }

  const section = h('section', { class: 'card meetings' },
    h('div', { class: 'section-head' }, h('h2', {}, 'Your meetings'),
      h('div', { class: 'tabs', role: 'tablist' }, tabButtons)),
    error, list, pager);
  section.reload = load;
  load();
  return section;
}

export function renderHome(root, { navigate }) {
  const list = meetingsList(navigate);
  const created = h('div', { id: 'created' });
  const createCard = renderCreateForm({
    onCreated(meeting) {
      replace(created, h('div', { class: 'card created', id: 'created-meeting' },
        h('h2', {}, 'Meeting created'),
        h('p', {}, h('strong', {}, meeting.title), meeting.start_time ? ` · ${when(meeting.start_time)}` : ''),
        invitePanel(meeting),
        h('div', { class: 'row' },
          h('button', { type: 'button', class: 'primary', onclick: () => navigate(`/join/${meeting.meeting_code}`) }, 'Join now'))));
      created.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
      list.reload();
    },
  });
  replace(root, h('section', { class: 'screen home-screen' },
    h('div', { class: 'home-side' }, joinByCode(navigate), createCard, created),
    h('div', { class: 'home-main' }, list)));
}
