// What each signaling message does to the room (types in docs/protocol.md).

import { describe } from '../errors.js';
import { MEDIA_TYPES } from '../media.js';
import { displayName, ROLE_NAMES } from '../roster.js';
import { errorOf, T } from '../signaling.js';
import { notify } from './notices.js';
import { syncSelf } from './room.js';

function camKey(uid) {
  return `${uid}:camera`;
}

/** Bring roster and tiles in line with a room-info. */
export function syncTiles(ctx, info) {
  const { roster, grid, selfId } = ctx;
  roster.reset(info.participants || []);
  ctx.shareNeedsGrant = Boolean(info.screen_share_requires_permission);
  for (const p of roster.people.values()) {
    if (p.user_id === selfId) continue;
    if (p.role === 'audience') {
      grid.removeUser(p.user_id);
      continue;
    }
    grid.tile(camKey(p.user_id), { userId: p.user_id, name: displayName(p) });
    grid.setAudioMuted(p.user_id, p.audio_muted);
    grid.setVideoOff(p.user_id, p.video_muted);
  }
  for (const t of [...grid.tiles.values()]) {
    if (t.userId !== selfId && !roster.get(t.userId)) grid.remove(t.key);
  }
}

function muted(action) {
  return action === 'mute' || action === 'video_off';
}

function onMediaControl(ctx, p) {
  const media = p.media_type === 'video' || p.action?.startsWith('video') ? 'video' : 'audio';
  const field = `${media}_muted`;
  const host = ctx.roster.get(p.by);
  const who = host ? displayName(host) : 'The host';
  if (p.scope === 'all') {
    const spared = new Set(p.except_user_ids || []);
    for (const person of ctx.roster.people.values()) {
      if (spared.has(person.user_id)) continue;
      ctx.roster.patch(person.user_id, { [field]: true });
      ctx.grid[media === 'audio' ? 'setAudioMuted' : 'setVideoOff'](person.user_id, true);
    }
    if (!spared.has(ctx.selfId) && ctx.role !== 'audience') {
      ctx.local.forceOff(media);
      notify(`${who} muted everyone.`, 'warning');
    }
    return;
  }
  const uid = p.user_id;
  const isMuted = muted(p.action);
  ctx.roster.patch(uid, { [field]: isMuted });
  if (uid === ctx.selfId) {
    if (p.forced) {
      ctx.local.forceOff(media);
      notify(media === 'audio' ? `${who} muted you.` : `${who} turned off your camera.`, 'warning', { timeout: 10000 });
    }
    return;
  }
  ctx.grid[media === 'audio' ? 'setAudioMuted' : 'setVideoOff'](uid, isMuted);
}

function onScreenShare(ctx, msg) {
  const p = msg.payload || {};
  const uid = p.user_id ?? msg.from_user_id;
  const person = ctx.roster.get(uid);
  const name = displayName(person);
  if (p.action === 'start') {
    ctx.roster.patch(uid, { sharing: true });
    if (uid === ctx.selfId) ctx.local.confirmShare();
    else notify(`${name} is sharing their screen.`);
  } else if (p.action === 'stop') {
    ctx.roster.patch(uid, { sharing: false });
    ctx.grid.remove(`${uid}:screen`);
    if (uid === ctx.selfId && ctx.local.sharing) {
      ctx.local.stopShare(false);
      if (p.reason === 'stopped_by_host') notify('The host stopped your screen share.', 'warning');
      if (p.reason === 'permission_revoked') notify('You may no longer share your screen.', 'warning');
    }
  } else if (p.action === 'grant' || p.action === 'revoke') {
    ctx.roster.patch(uid, { can_share_screen: p.action === 'grant' });
    if (uid === ctx.selfId) {
      notify(p.action === 'grant' ? 'The host allowed you to share your screen.' : 'You may no longer share your screen.');
    }
  }
  syncSelf(ctx);
}

async function onRoleChanged(ctx, p) {
  const uid = p.user_id;
  ctx.roster.patch(uid, { role: p.role });
  const label = ROLE_NAMES[p.role] || p.role;
  if (uid === ctx.selfId) {
    ctx.setRole(p.role);
    await ctx.local.setPublishing(p.role !== 'audience');
    ctx.local.announce(); // the server set us muted while in the audience
    notify(p.role === 'audience' ? 'You were moved to the audience: you can watch and chat.' : `You are now a ${label.toLowerCase()}.`);
    syncSelf(ctx);
    return;
  }
  const person = ctx.roster.get(uid);
  if (p.role === 'audience') ctx.grid.removeUser(uid);
  else if (person) ctx.grid.tile(camKey(uid), { userId: uid, name: displayName(person) });
  if (person) notify(`${displayName(person)} is now ${p.role === 'audience' ? 'in the audience' : `a ${label.toLowerCase()}`}.`);
}

function onError(ctx, msg) {
  const p = msg.payload || {};
  const err = errorOf(msg);
  const pending = ctx.pendingChats.find((c) => c.id === p.request_id);
  if (pending) {
    ctx.pendingChats.splice(ctx.pendingChats.indexOf(pending), 1);
    clearTimeout(pending.timer);
    pending.reject(err);
    return;
  }
  if (p.request_type === T.SCREEN_SHARE && ctx.local.sharing && !ctx.local.shareConfirmed) {
    ctx.local.stopShare(false);
    notify(`Your screen is not shared: ${describe(err)}`, 'error');
    return;
  }
  if ([T.OFFER, T.ANSWER, T.ICE].includes(p.request_type)) {
    // Media negotiation refused (e.g. no media server): say it once, not per candidate.
    if (!ctx.mediaRefused) notify(`Audio and video are not available: ${describe(err)}`, 'error', { timeout: 0 });
    ctx.mediaRefused = true;
    return;
  }
  if (p.request_type === T.MEDIA_CONTROL && p.code === 403) {
    // An unmute the host does not allow: back to muted, and say why.
    ctx.local.forceOff(/video/i.test(p.message || '') ? 'video' : 'audio');
  }
  notify(describe(err), 'error');
}

function onChat(ctx, msg) {
  const p = msg.payload || {};
  const m = {
    message_id: p.message_id, user_id: p.user_id ?? msg.from_user_id, username: p.username,
    content: p.content, created_at: p.created_at || msg.timestamp, is_private: Boolean(p.private),
  };
  if (m.user_id === ctx.selfId) {
    const pending = ctx.pendingChats.find((c) => c.text.trim() === String(p.content).trim());
    if (pending) {
      ctx.pendingChats.splice(ctx.pendingChats.indexOf(pending), 1);
      clearTimeout(pending.timer);
      pending.resolve(m);
      return;
    }
  }
  ctx.chat.add(m);
}

export async function handleMessage(ctx, msg) {
  if (ctx.closed) return;
  const p = msg.payload || {};
  if (MEDIA_TYPES.has(msg.type)) {
    if (!msg.from_user_id && ctx.media) await ctx.media.handle(msg); // peer-to-peer is not used here
    return;
  }
  switch (msg.type) {
    case T.ROOM_INFO:
      syncTiles(ctx, p);
      syncSelf(ctx);
      break;
    case T.USER_JOINED: {
      const isNew = ctx.roster.upsert(p);
      if (p.role !== 'audience') ctx.grid.tile(camKey(p.user_id), { userId: p.user_id, name: displayName(p) });
      if (isNew) notify(`${displayName(p)} joined.`);
      break;
    }
    case T.USER_LEFT: {
      const gone = ctx.roster.removeSession(p);
      if (gone) {
        ctx.grid.removeUser(p.user_id);
        const why = { timeout: ' (connection lost)', kicked: ' (removed by the host)' }[p.reason] || '';
        notify(`${displayName(gone)} left${why}.`);
      }
      break;
    }
    case T.CHAT:
      onChat(ctx, msg);
      break;
    case T.SCREEN_SHARE:
      onScreenShare(ctx, msg);
      break;
    case T.MEDIA_CONTROL:
      onMediaControl(ctx, p);
      break;
    case T.ROLE_CHANGED:
      await onRoleChanged(ctx, p);
      break;
    case T.KICKED:
      ctx.finish('kicked', p.reason);
      break;
    case T.MEETING_ENDED:
      ctx.finish('ended');
      break;
    case T.MEETING_UPDATED: {
      const fields = p.fields || {};
      if (fields.title) ctx.title.textContent = fields.title;
      if (fields.settings && 'enable_chat' in fields.settings) ctx.chat.setEnabled(fields.settings.enable_chat !== false);
      if (fields.settings && 'enable_ai_analysis' in fields.settings) ctx.setAiAnalysis(Boolean(fields.settings.enable_ai_analysis));
      if (fields.settings && 'screen_share_requires_permission' in fields.settings) {
        ctx.shareNeedsGrant = Boolean(fields.settings.screen_share_requires_permission);
        syncSelf(ctx);
      }
      break;
    }
    case T.CAPTION:
      ctx.captions.add(p);
      break;
    case T.ERROR:
      onError(ctx, msg);
      break;
    default:
      break; // pong, and extensions this client does not use
  }
}
