// The new-meeting form: every option of the contract's create request.

import { meetings } from '../api.js';
import { field, h } from '../dom.js';
import { busy, errorLine } from './notices.js';

function checkbox(id, label, checked = false) {
  const input = h('input', { type: 'checkbox', id, name: id, checked });
  const wrap = h('label', { class: 'check', for: id }, input, h('span', {}, label));
  wrap.input = input;
  return wrap;
}

/** "2025-10-01T14:00" in local time (what datetime-local shows) -> ISO 8601 UTC. */
function toIso(local) {
  if (!local) return null;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function renderCreateForm({ onCreated }) {
  const title = field('Title', { name: 'title', id: 'meeting-title', required: true, maxlength: 200, placeholder: 'Weekly sync' });
  const description = field('Description', { tag: 'textarea', name: 'description', id: 'meeting-description', rows: 2, maxlength: 2000 });
  const start = field('Starts', { name: 'start_time', id: 'meeting-start', type: 'datetime-local' }, 'Leave empty to start now.');
  const duration = field('Minutes', { name: 'duration', id: 'meeting-duration', type: 'number', min: 1, max: 1440, value: '60' });
  const maxPeople = field('Max people', { name: 'max_participants', id: 'meeting-max', type: 'number', min: 2, max: 1000, value: '10' });
  const isPublic = checkbox('meeting-public', 'Listed publicly');
  const recording = checkbox('meeting-recording', 'Allow recording');
  const ai = checkbox('meeting-ai', 'Live captions and AI notes');
  const muteOnJoin = checkbox('meeting-mute-on-join', 'Mute people when they join');
  const selfUnmute = checkbox('meeting-self-unmute', 'Let people unmute themselves', true);
  const chat = checkbox('meeting-chat', 'Chat', true);
  const sharePermission = checkbox('meeting-share-permission', 'Screen sharing needs the host\'s permission', true);
  const webinar = checkbox('meeting-webinar', 'Webinar: people join as audience');
  const requirePassword = checkbox('meeting-require-password', 'Require a password');
  const password = field('Meeting password', {
    name: 'password', id: 'meeting-password', type: 'text', minlength: 4, maxlength: 64, autocomplete: 'off',
  }, '4 to 64 characters.');
  password.hidden = true;
  requirePassword.input.addEventListener('change', () => {
    password.hidden = !requirePassword.input.checked;
    if (!password.hidden) password.input.focus();
  });

  const error = errorLine();
  const more = h('details', { class: 'more-options' }, h('summary', {}, 'More options'),
    description, h('div', { class: 'row' }, duration, maxPeople),
    isPublic, muteOnJoin, selfUnmute, chat, sharePermission, webinar, recording, ai);
  const form = h('form', { class: 'card form', id: 'create-form', novalidate: true },
    h('h2', {}, 'New meeting'), title, start, requirePassword, password, more, error,
    h('button', { class: 'primary wide', type: 'submit' }, 'Create meeting'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.clear();
    if (!title.input.value.trim()) {
      error.show('Give the meeting a title.');
      title.input.focus();
      return;
    }
    const startIso = toIso(start.input.value);
    if (startIso === undefined) {
      error.show('Starts: enter a valid date and time.');
      return;
    }
    const wantsPassword = requirePassword.input.checked;
    if (wantsPassword && password.input.value.length < 4) {
      error.show('The meeting password needs at least 4 characters, or untick "Require a password".');
      password.input.focus();
      return;
    }
    const body = {
      title: title.input.value.trim(),
      description: description.input.value.trim(),
      duration: Number(duration.input.value) || 60,
      max_participants: Number(maxPeople.input.value) || 10,
      is_public: isPublic.input.checked,
      settings: {
        enable_recording: recording.input.checked,
        enable_ai_analysis: ai.input.checked,
        mute_on_join: muteOnJoin.input.checked,
        allow_self_unmute: selfUnmute.input.checked,
        enable_chat: chat.input.checked,
        screen_share_requires_permission: sharePermission.input.checked,
        default_role: webinar.input.checked ? 'audience' : 'participant',
        require_password: wantsPassword,
        ...(wantsPassword ? { password: password.input.value } : {}),
      },
    };
    if (startIso) body.start_time = startIso;
    try {
      const meeting = await busy(form, () => meetings.create(body));
      form.reset();
      password.hidden = true;
      onCreated({ ...meeting, title: meeting.title || body.title, start_time: meeting.start_time || body.start_time });
    } catch (err) {
      error.show(err); // the form keeps every value for a retry
    }
  });
  return form;
}
