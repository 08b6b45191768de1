// Host and co-host actions, through the REST API (which checks the role and tells the room).

import { meetings } from '../api.js';
import { SignalingError } from '../errors.js';
import { displayName } from '../roster.js';
import { confirmDialog, notify, notifyError } from './notices.js';

/**
 * What only the REST participant list knows (participant ids for moderation, screen-share
 * grants): fetched when the people panel opens and before acting on someone new.
 */
export async function refreshPeople(ctx) {
  const page = await meetings.participants(ctx.meeting.meeting_id, null);
  for (const p of page.items || []) {
    ctx.participantIds.set(p.user_id, p.participant_id);
    if (p.state === 'joined' && ctx.roster.get(p.user_id)) {
      ctx.roster.patch(p.user_id, { can_share_screen: p.can_share_screen });
    }
  }
}

/** participant_id for a user_id: REST moderation addresses participant rows. */
async function participantId(ctx, userId) {
  if (!ctx.participantIds.has(userId)) await refreshPeople(ctx);
  const pid = ctx.participantIds.get(userId);
  if (!pid) throw new SignalingError(0, 'That person is not in this meeting any more.');
  return pid;
}

export async function moderate(ctx, action, person) {
  const id = ctx.meeting.meeting_id;
  const name = displayName(person);
  try {
    const pid = await participantId(ctx, person.user_id);
    if (action === 'mute') {
      await meetings.mute(id, pid, 'audio');
      notify(`${name} is muted.`, 'success');
    } else if (action === 'stop-video') {
      await meetings.mute(id, pid, 'video');
      notify(`${name}'s camera is off.`, 'success');
    } else if (action === 'kick') {
      const { ok, value } = await confirmDialog(`Remove ${name} from the meeting? They cannot come back.`, {
        okLabel: 'Remove', danger: true, input: { label: 'Reason (optional, shown to them)', placeholder: 'Reason (optional)' },
      });
      if (!ok) return;
      await meetings.kick(id, pid, value);
      notify(`${name} was removed.`, 'success');
    } else if (action === 'grant-share' || action === 'revoke-share') {
      await meetings.screenShare(id, pid, action === 'grant-share');
      ctx.roster.patch(person.user_id, { can_share_screen: action === 'grant-share' });
    } else if (['co_host', 'participant', 'audience'].includes(action)) {
      await meetings.setRole(id, pid, action);
    }
  } catch (err) {
    notifyError(err);
  }
}

export async function muteAll(ctx) {
  try {
    const data = await meetings.muteAll(ctx.meeting.meeting_id, 'audio');
    const n = (data.muted_user_ids || []).length;
    notify(n ? `Muted ${n} ${n === 1 ? 'person' : 'people'}.` : 'Nobody needed muting.', 'success');
  } catch (err) {
    notifyError(err);
  }
}
