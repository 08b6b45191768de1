// /join/{code}: look the meeting up, then the pre-join screen (preview, devices, password),
// then the room. A reload inside a meeting skips the pre-join screen and rejoins at once.

import { meetings } from '../api.js';
import * as devices from '../devices.js';
import { h, icon, replace } from '../dom.js';
import { describe } from '../errors.js';
import { parseCode } from '../invite.js';
import { activeMeeting, forgetActive } from '../rejoin.js';
import { busy, errorLine } from './notices.js';
import { renderRoom } from './room.js';

function problem(root, navigate, text) {
  replace(root, h('section', { class: 'screen narrow' },
    h('div', { class: 'card' }, h('h1', {}, 'Cannot join'), h('p', { class: 'form-error', role: 'alert' }, text),
      h('button', { type: 'button', class: 'primary', onclick: () => navigate('/') }, 'Back to your meetings'))));
}

function deviceSelect(id, label, list, selected, onchange) {
  const select = h('select', { id, 'aria-label': label, onchange: (e) => onchange(e.target.value) },
    list.map((d) => h('option', { value: d.id, selected: d.id === selected }, d.label)));
  return h('label', { class: 'device', for: id }, h('span', {}, label), select);
}

export async function renderJoin(root, { navigate, params }) {
  const code = parseCode(params[0]);
  if (!code) {
    problem(root, navigate, 'This invite link is not valid. A meeting code looks like ABC-DEF-GHI.');
    return undefined;
  }
  replace(root, h('section', { class: 'screen narrow' }, h('p', { class: 'loading' }, 'Looking up the meeting…')));
  let meeting;
  try {
    meeting = await meetings.byCode(code);
  } catch (err) {
    problem(root, navigate, describe(err));
    return undefined;
  }
  if (meeting.status === 'ended') {
    forgetActive();
    problem(root, navigate, 'This meeting has ended.');
    return undefined;
  }

  const prefs = devices.loadPrefs();
  const active = activeMeeting(meeting.meeting_id);
  if (active) {
    // A reload while in the meeting: no REST join (it would want the password again); the
    // socket resumes our session with the same peer_id. If the server has let us go by now,
    // fall back to the pre-join screen.
    const { stream } = await devices.openMedia({ audio: true, video: true, audioId: prefs.audioId, videoId: prefs.videoId });
    return renderRoom(root, {
      meeting, joined: null, stream, prefs, navigate, resume: active,
      onRefused: () => renderPrejoin(root, { meeting, prefs, navigate }),
    });
  }
  return renderPrejoin(root, { meeting, prefs, navigate });
}

async function renderPrejoin(root, { meeting, prefs, navigate }) {
  let stream = new MediaStream();
  let handedOff = false;
  let stopMeter = () => {};
  const video = h('video', { class: 'preview-video mirror', autoplay: true, playsInline: true, muted: true });
  const meter = h('div', { class: 'level', 'aria-hidden': 'true' });
  const mediaNote = h('p', { class: 'media-note', role: 'status' });
  const deviceRow = h('div', { class: 'devices' });
  const micBtn = h('button', { type: 'button', class: 'round', id: 'prejoin-mic' });
  const camBtn = h('button', { type: 'button', class: 'round', id: 'prejoin-cam' });

  function paintToggles() {
    replace(micBtn, icon(prefs.audioOn ? 'mic' : 'micOff'));
    micBtn.setAttribute('aria-label', prefs.audioOn ? 'Turn microphone off' : 'Turn microphone on');
    micBtn.classList.toggle('off', !prefs.audioOn);
    replace(camBtn, icon(prefs.videoOn ? 'cam' : 'camOff'));
    camBtn.setAttribute('aria-label', prefs.videoOn ? 'Turn camera off' : 'Turn camera on');
    camBtn.classList.toggle('off', !prefs.videoOn);
    stream.getAudioTracks().forEach((t) => { t.enabled = prefs.audioOn; });
    stream.getVideoTracks().forEach((t) => { t.enabled = prefs.videoOn; });
    video.classList.toggle('hidden', !prefs.videoOn || stream.getVideoTracks().length === 0);
  }
  micBtn.addEventListener('click', () => { prefs.audioOn = !prefs.audioOn; devices.savePrefs(prefs); paintToggles(); });
  camBtn.addEventListener('click', () => { prefs.videoOn = !prefs.videoOn; devices.savePrefs(prefs); paintToggles(); });

  async function paintDevices() {
    const list = await devices.listDevices().catch(() => ({ audioinput: [], videoinput: [], audiooutput: [] }));
    const camId = stream.getVideoTracks()[0]?.getSettings().deviceId || prefs.videoId;
    const micId = stream.getAudioTracks()[0]?.getSettings().deviceId || prefs.audioId;
    const switchTo = (kind) => async (id) => {
      try {
        await devices.switchDevice(stream, kind, id);
        prefs[kind === 'audio' ? 'audioId' : 'videoId'] = id;
        devices.savePrefs(prefs);
        video.srcObject = stream;
        if (kind === 'audio') { stopMeter(); stopMeter = devices.levelMeter(stream, meter); }
        paintToggles();
      } catch (err) {
        mediaNote.textContent = describe(err);
      }
    };
    replace(deviceRow,
      list.videoinput.length ? deviceSelect('camera-select', 'Camera', list.videoinput, camId, switchTo('video')) : null,
      list.audioinput.length ? deviceSelect('mic-select', 'Microphone', list.audioinput, micId, switchTo('audio')) : null,
      list.audiooutput.length && 'setSinkId' in HTMLMediaElement.prototype
        ? deviceSelect('speaker-select', 'Speaker', list.audiooutput, prefs.outputId, (id) => { prefs.outputId = id; devices.savePrefs(prefs); })
        : null);
  }

  async function openPreview() {
    const { stream: s, error } = await devices.openMedia({ audio: true, video: true, audioId: prefs.audioId, videoId: prefs.videoId });
    stream = s;
    video.srcObject = stream;
    mediaNote.textContent = error ? describe(error) : '';
    stopMeter = devices.levelMeter(stream, meter);
    paintToggles();
    await paintDevices();
  }

  const password = h('input', {
    id: 'join-password', type: 'password', autocomplete: 'off', maxlength: 64,
    'aria-label': 'Meeting password', placeholder: 'Meeting password',
  });
  const needsPassword = Boolean(meeting.settings?.require_password) && meeting.role !== 'host';
  const passwordField = h('div', { class: 'field', hidden: !needsPassword },
    h('label', { for: 'join-password' }, 'This meeting needs a password'), password);
  const error = errorLine();
  const joinBtn = h('button', { class: 'primary wide', type: 'submit', id: 'join-button' }, 'Join meeting');
  const form = h('form', { class: 'prejoin-form', id: 'prejoin-form', novalidate: true },
    h('h1', { id: 'prejoin-title' }, meeting.title),
    h('p', { class: 'muted' }, [meeting.host_name ? `Hosted by ${meeting.host_name}` : '',
      meeting.status === 'scheduled' && meeting.role !== 'host' ? ' · the host has not started it yet' : '',
      meeting.participant_count ? ` · ${meeting.participant_count} in the meeting` : ''].join('')),
    passwordField, error, joinBtn,
    h('button', { type: 'button', class: 'link-button', onclick: () => navigate('/') }, 'Back'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.clear();
    if (!passwordField.hidden && !password.value) {
      error.show('Enter the meeting password.');
      password.focus();
      return;
    }
    try {
      const joined = await busy(form, async () => {
        await previewReady;
        return meetings.join(meeting.meeting_id, password.value || undefined);
      });
      handedOff = true;
      stopMeter();
      const cleanupRoom = await renderRoom(root, { meeting, joined, stream, prefs, navigate, password: password.value || undefined });
      roomCleanup = cleanupRoom;
    } catch (err) {
      if (err.code === 20004) {
        passwordField.hidden = false;
        error.show(password.value ? 'The meeting password is wrong.' : 'This meeting needs a password.');
        password.focus();
        password.select();
      } else {
        error.show(err);
      }
    }
  });

  let roomCleanup = null;
  replace(root, h('section', { class: 'screen prejoin-screen' },
    h('div', { class: 'preview' }, video, h('div', { class: 'preview-bar' }, micBtn, meter, camBtn), mediaNote, deviceRow),
    form));
  paintToggles();
  const previewReady = openPreview().catch((err) => { mediaNote.textContent = describe(err); });
  (needsPassword ? password : joinBtn).focus();

  return async () => {
    stopMeter();
    if (roomCleanup) await roomCleanup();
    if (!handedOff) devices.stopStream(stream);
  };
}
