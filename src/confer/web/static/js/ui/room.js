// The meeting room: header, video grid, side panels, controls; joins signaling and media.
// Message handling lives in room-messages.js; this file wires the pieces and their lifecycle.

import { ai, meetings } from '../api.js';
import * as devices from '../devices.js';
import { h, icon, replace } from '../dom.js';
import { describe, SignalingError } from '../errors.js';
import { copyText, inviteUrl } from '../invite.js';
import { MediaLink } from '../media.js';
import { forgetActive, rememberActive, updateActive } from '../rejoin.js';
import { displayName, Roster } from '../roster.js';
import * as session from '../session.js';
import { Signaling, T } from '../signaling.js';
import { LEVELS, QualityMeter } from '../stats.js';
import { CaptionsOverlay, TranscriptPanel } from './captions.js';
import { ChatPanel } from './chat.js';
import { Controls } from './controls.js';
import { Grid } from './grid.js';
import { LocalMedia } from './local.js';
import { confirmDialog, notify, notifyError } from './notices.js';
import { PeoplePanel } from './people.js';
import { handleMessage, syncTiles } from './room-messages.js';
import { moderate, muteAll, refreshPeople } from './moderation.js';

const CHAT_TIMEOUT_MS = 10000;

export async function renderRoom(root, { meeting, joined, stream, prefs, navigate, resume, onRefused }) {
  const me = session.current();
  const selfId = joined?.user_id ?? me.user_id;
  const signaling = new Signaling({
    meetingId: meeting.meeting_id, userId: selfId, peerId: resume?.peer_id, sessionId: resume?.session_id,
  });
  const ctx = {
    meeting, selfId, navigate, signaling,
    role: joined?.role || resume?.role || 'participant',
    roster: new Roster(selfId),
    grid: new Grid(),
    local: new LocalMedia({ stream, prefs, signaling }),
    media: null,
    audioSinks: h('div', { class: 'audio-sinks', 'aria-hidden': 'true' }),
    pendingChats: [],
    participantIds: new Map(),
    closed: false,
  };
  document.body.classList.add('in-room');

  // --- header, banner, panels, controls -------------------------------------------------------
  const quality = h('span', { class: 'quality q-none', id: 'quality', role: 'status', title: LEVELS.none },
    icon('signal'), h('span', { class: 'quality-text' }, 'Connecting…'));
  const title = h('h1', { class: 'room-title', id: 'room-title' }, meeting.title);
  const inviteBtn = h('button', {
    type: 'button', class: 'link-button', id: 'room-invite',
    onclick: async () => notify((await copyText(inviteUrl(meeting))) ? 'Invite link copied.' : 'Could not copy the invite link.', 'success'),
  }, icon('link'), h('span', {}, meeting.meeting_code));
  const banner = h('div', { class: 'banner', id: 'connection-banner', role: 'status', hidden: true });
  ctx.banner = banner;
  ctx.title = title;

  ctx.chat = new ChatPanel({
    selfId, send: (text) => sendChat(ctx, text), history: (before) => loadHistory(meeting.meeting_id, before),
    onUnread: (n) => ctx.controls.setUnread(n),
  });
  ctx.chat.setEnabled(meeting.settings?.enable_chat !== false);
  ctx.people = new PeoplePanel({
    roster: ctx.roster, act: (action, person) => moderate(ctx, action, person), muteAll: () => muteAll(ctx),
  });
  ctx.captions = new CaptionsOverlay({ roster: ctx.roster });
  ctx.transcript = new TranscriptPanel({ meetingId: meeting.meeting_id });
  // Captions need the meeting's AI analysis and a server whose AI service can run.
  let aiAnalysis = false;
  let serverCaptions = true;
  ctx.setAiAnalysis = (on) => {
    aiAnalysis = Boolean(on);
    const usable = aiAnalysis && serverCaptions;
    ctx.captions.setAvailable(usable);
    ctx.controls.setCaptions(usable, ctx.captions.on);
  };
  ai.status().then(
    (s) => { serverCaptions = Boolean(s?.enabled) && s.state !== 'failed'; },
    (err) => { serverCaptions = err?.code !== 40001; }, // 40001: no AI service on this server
  ).then(() => ctx.setAiAnalysis(aiAnalysis));
  const panel = h('aside', { class: 'side-panel', id: 'side-panel', hidden: true });
  const closePanel = h('button', { type: 'button', class: 'panel-close', 'aria-label': 'Close panel', onclick: () => openPanel(null) }, icon('close'));
  let openName = null;
  function openPanel(which) {
    openName = which === openName ? null : which;
    panel.hidden = !openName;
    const panels = { chat: ctx.chat.el, people: ctx.people.el, transcript: ctx.transcript.el };
    replace(panel, closePanel, panels[openName] || null);
    ctx.chat.setOpen(openName === 'chat');
    ctx.controls.setPanel(openName);
    if (openName === 'chat') ctx.chat.box.focus();
    if (openName === 'people') refreshPeople(ctx).catch(() => {}); // the list works without it
    if (openName === 'transcript') ctx.transcript.load();
    ctx.grid.layout();
  }

  ctx.controls = new Controls({
    mic: () => toggleMic(ctx),
    cam: () => toggleCam(ctx),
    screen: () => toggleShare(ctx),
    chat: () => openPanel('chat'),
    captions: () => {
      ctx.captions.setOn(!ctx.captions.on);
      ctx.controls.setCaptions(true, ctx.captions.on);
    },
    transcript: () => openPanel('transcript'),
    people: () => openPanel('people'),
    leave: () => leave(ctx),
    end: () => endMeeting(ctx),
  });
  ctx.roster.addEventListener('change', () => ctx.controls.setPeople(ctx.roster.size));
  ctx.local.addEventListener('change', () => syncSelf(ctx));
  ctx.setRole = (role) => {
    ctx.role = role;
    ctx.controls.setRole(role);
    ctx.people.setViewerRole(role);
    updateActive({ role });
  };
  ctx.setRole(ctx.role);
  ctx.setAiAnalysis(Boolean(meeting.settings?.enable_ai_analysis));

  replace(root, h('section', { class: 'room', id: 'room' },
    h('header', { class: 'room-head' }, h('div', { class: 'room-id' }, title, inviteBtn), quality),
    banner,
    h('div', { class: 'room-body' }, ctx.grid.el, ctx.captions.el, panel),
    ctx.controls.el,
    ctx.audioSinks));

  // --- signaling ------------------------------------------------------------------------------
  rememberActive({ meeting_id: meeting.meeting_id, code: meeting.meeting_code, peer_id: signaling.peerId, role: ctx.role });
  let dropped = false;
  signaling.addEventListener('state', async (e) => {
    const { state, reconnected, resumed, info } = e.detail;
    if (state === 'reconnecting' && !dropped) {
      dropped = true;
      banner.textContent = 'Connection lost. Reconnecting…';
      banner.hidden = false;
    } else if (state === 'open') {
      updateActive({ session_id: signaling.sessionId });
      await onOpen(ctx, info, { reconnected, resumed });
      if (dropped) {
        dropped = false;
        banner.hidden = true;
        notify('Reconnected.', 'success');
      }
    }
  });
  signaling.addEventListener('message', (e) => handleMessage(ctx, e.detail));
  let opened = false;
  signaling.addEventListener('state', (e) => { if (e.detail.state === 'open') opened = true; });
  signaling.addEventListener('final', (e) => {
    if (!opened && onRefused && e.detail.reason === 'forbidden') {
      // Resuming after a reload, but the server no longer counts us in: join afresh.
      teardown(ctx);
      forgetActive();
      ctx.cleanup = onRefused();
      return;
    }
    finish(ctx, e.detail.reason, e.detail.text);
  });
  ctx.finish = (reason, text) => finish(ctx, reason, text);

  ctx.grid.onResize = debounceConstraints(ctx);
  ctx.meter = new QualityMeter(() => ctx.media?.pc, ({ level, loss, rtt }) => {
    quality.className = `quality q-${level}`;
    quality.title = `${LEVELS[level]}${rtt !== null ? ` · ${Math.round(rtt * 1000)} ms` : ''} · ${(loss * 100).toFixed(1)}% loss`;
    quality.lastChild.textContent = { good: 'Good', fair: 'Unstable', poor: 'Poor', none: 'No media' }[level];
    quality.dataset.level = level;
  });

  await signaling.connect();
  ctx.chat.loadHistory();
  return async () => {
    // Navigating away inside the app (back button, another tab's logout) is leaving; a reload
    // never gets here, so it keeps the session for the resume.
    if (!ctx.closed && ctx.signaling.state === 'open') {
      ctx.signaling.leave();
      forgetActive();
    }
    teardown(ctx);
    const next = await ctx.cleanup;
    if (typeof next === 'function') await next();
  };
}

async function onOpen(ctx, info, { reconnected, resumed }) {
  syncTiles(ctx, info);
  if (ctx.role !== info.role) ctx.setRole(info.role);
  const canPublish = info.role !== 'audience';
  const self = (info.participants || []).find((p) => p.is_self);
  if (!ctx.media) {
    ctx.media = new MediaLink(ctx.signaling, info.ice_servers);
    wireMedia(ctx);
    if (self?.audio_muted && !resumed) ctx.local.forceOff('audio'); // mute-on-join
    ctx.local.media = ctx.media;
    await ctx.local.setPublishing(canPublish); // publishes, or listens only
  } else if (reconnected && !resumed) {
    // The server forgot us while we were away: a fresh media session.
    ctx.media.restart();
  }
  if (!resumed) ctx.local.announce();
  syncSelf(ctx);
}

function wireMedia(ctx) {
  const { media, grid } = ctx;
  media.addEventListener('track', (e) => {
    const { mid, track, info } = e.detail;
    if (track.kind === 'audio') {
      const el = h('audio', { autoplay: true, dataset: { mid, userId: String(info.user_id ?? '') } });
      el.srcObject = new MediaStream([track]);
      const out = devices.loadPrefs().outputId;
      if (out && el.setSinkId) el.setSinkId(out).catch(() => {});
      ctx.audioSinks.querySelector(`audio[data-mid="${CSS.escape(mid)}"]`)?.remove();
      ctx.audioSinks.append(el);
      return;
    }
    if (info.user_id === undefined || info.user_id === null) return;
    const source = info.source === 'screen' ? 'screen' : 'camera';
    const person = ctx.roster.get(info.user_id);
    const key = `${info.user_id}:${source}`;
    grid.tile(key, { userId: info.user_id, name: displayName(person || info), source });
    grid.setStream(key, new MediaStream([track]), mid);
    track.addEventListener('unmute', () => grid.setStream(key, grid.tiles.get(key)?.video.srcObject, mid));
  });
  media.addEventListener('trackended', (e) => {
    const { mid, info } = e.detail;
    ctx.audioSinks.querySelector(`audio[data-mid="${CSS.escape(mid)}"]`)?.remove();
    if (info.kind === 'audio' || info.user_id === undefined) return;
    const key = `${info.user_id}:${info.source === 'screen' ? 'screen' : 'camera'}`;
    if (info.source === 'screen') grid.remove(key);
    else if (grid.tiles.get(key)?.mid === mid) grid.setStream(key, null);
  });
  media.addEventListener('speaker', (e) => grid.setSpeaking(e.detail.user_id));
  media.addEventListener('state', (e) => {
    if (e.detail.state === 'failed' && ctx.signaling.state === 'open') media.restart();
  });
  media.addEventListener('error', (e) => console.warn('media negotiation:', e.detail.error));
}

/** Our own tiles: the camera preview, and the screen we share. */
export function syncSelf(ctx) {
  const { grid, local, selfId } = ctx;
  const me = ctx.roster.get(selfId) || session.current();
  const key = `${selfId}:camera`;
  if (ctx.role === 'audience') {
    grid.remove(key);
  } else {
    grid.tile(key, { userId: selfId, name: displayName(me), self: true });
    grid.setStream(key, local.stream);
    grid.setVideoOff(selfId, !local.videoOn);
    grid.setAudioMuted(selfId, !local.audioOn);
  }
  const screenKey = `${selfId}:screen`;
  if (local.sharing) {
    grid.tile(screenKey, { userId: selfId, name: displayName(me), self: true, source: 'screen' });
    grid.setStream(screenKey, local.screen);
  } else {
    grid.remove(screenKey);
  }
  ctx.controls.setMic(local.audioOn);
  ctx.controls.setCam(local.videoOn);
  const selfEntry = ctx.roster.get(selfId);
  const needsGrant = ctx.shareNeedsGrant && ctx.role === 'participant' && !selfEntry?.can_share_screen;
  ctx.controls.setSharing(local.sharing, !needsGrant);
}

function toggleMic(ctx) {
  if (!ctx.local.setMic(!ctx.local.audioOn)) notify('No microphone is available.', 'warning');
}

function toggleCam(ctx) {
  if (!ctx.local.setCam(!ctx.local.videoOn)) notify('No camera is available.', 'warning');
}

async function toggleShare(ctx) {
  try {
    if (ctx.local.sharing) await ctx.local.stopShare();
    else await ctx.local.startShare();
  } catch (err) {
    if (err.name === 'NotAllowedError') notify('Screen sharing was cancelled.', 'info');
    else notifyError(err.message === 'not connected' ? new SignalingError(0, 'You are not connected right now. Try again in a moment.') : err);
  }
}

function sendChat(ctx, text) {
  return new Promise((resolve, reject) => {
    const id = ctx.signaling.send(T.CHAT, {
      content: text, user_id: ctx.selfId, username: session.current()?.username, meeting_id: ctx.meeting.meeting_id,
    });
    if (!id) {
      reject(new SignalingError(0, 'You are not connected right now. Your message is still in the box'));
      return;
    }
    const entry = { id, text, resolve, reject };
    entry.timer = setTimeout(() => {
      ctx.pendingChats.splice(ctx.pendingChats.indexOf(entry), 1);
      reject(new SignalingError(0, 'The server did not confirm it. Check the connection and send again'));
    }, CHAT_TIMEOUT_MS);
    ctx.pendingChats.push(entry);
  });
}

async function loadHistory(meetingId, before) {
  const PAGE = 50;
  const data = await meetings.messages(meetingId, { before, pageSize: PAGE });
  const items = (data.items || []).slice().reverse().map((m) => ({ ...m, is_private: m.is_private }));
  return { items, more: (data.items || []).length === PAGE };
}

function debounceConstraints(ctx) {
  const sizes = new Map();
  let timer = null;
  return (tile, width, height) => {
    sizes.set(tile.mid, { mid: tile.mid, width, height });
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (ctx.media) ctx.media.sendConstraints([...sizes.values()]);
      sizes.clear();
    }, 300);
  };
}

async function leave(ctx) {
  if (ctx.signaling.state === 'open') {
    ctx.signaling.leave();
  } else {
    try {
      await meetings.leave(ctx.meeting.meeting_id);
    } catch {
      // The server lets us go after the resume grace period anyway.
    }
  }
  forgetActive();
  ctx.navigate('/');
}

async function endMeeting(ctx) {
  const { ok } = await confirmDialog('End the meeting for everyone?', { okLabel: 'End meeting', danger: true });
  if (!ok) return;
  try {
    await meetings.end(ctx.meeting.meeting_id);
  } catch (err) {
    notifyError(err);
  }
}

const FINAL_WORDS = {
  kicked: 'You were removed from the meeting by the host.',
  ended: 'The meeting has ended.',
  replaced: 'You opened this meeting in another tab or window, so this one was disconnected.',
  forbidden: 'You are no longer in this meeting.',
  'not-found': 'This meeting no longer exists.',
  refused: 'The server refused the connection.',
  abuse: 'The connection was closed because too many messages were refused.',
  auth: 'Your session has expired. Please log in again.',
};

function finish(ctx, reason, text) {
  if (ctx.closed) return;
  teardown(ctx);
  forgetActive();
  const root = ctx.grid.el.closest('.room')?.parentNode || document.getElementById('app');
  document.body.classList.remove('in-room');
  const canRejoin = !['kicked', 'ended', 'not-found', 'auth'].includes(reason);
  const detail = reason === 'kicked' && text ? `Reason: ${text}` : reason === 'forbidden' && text ? text : null;
  replace(root, h('section', { class: 'screen narrow', id: 'room-over' }, h('div', { class: 'card' },
    h('h1', { id: 'room-over-title' }, FINAL_WORDS[reason] || 'You left the meeting.'),
    detail ? h('p', { id: 'room-over-detail' }, detail) : null,
    h('div', { class: 'row' },
      canRejoin ? h('button', { type: 'button', class: 'primary', onclick: () => ctx.navigate(`/join/${ctx.meeting.meeting_code}`, { replace: true }) }, 'Rejoin') : null,
      h('button', { type: 'button', onclick: () => ctx.navigate('/') }, 'Back to your meetings')))));
}

function teardown(ctx) {
  if (ctx.closed) return;
  ctx.closed = true;
  ctx.meter?.stop();
  ctx.signaling.close();
  ctx.media?.close();
  ctx.local.close();
  ctx.grid.destroy();
  ctx.captions.destroy();
  for (const p of ctx.pendingChats) clearTimeout(p.timer);
  document.body.classList.remove('in-room');
}
