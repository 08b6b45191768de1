// The control bar: microphone, camera, screen share, captions, chat, transcript, people, leave.

import { h, icon, replace } from '../dom.js';

function roundButton(id, label, iconName, onclick) {
  const btn = h('button', { type: 'button', class: 'round', id, 'aria-label': label, title: label, onclick }, icon(iconName));
  return btn;
}

export class Controls {
  /** handlers: {mic, cam, screen, captions, transcript, chat, people, leave, end} */
  constructor(handlers) {
    this.mic = roundButton('ctl-mic', 'Mute', 'mic', handlers.mic);
    this.cam = roundButton('ctl-cam', 'Turn camera off', 'cam', handlers.cam);
    this.screen = roundButton('ctl-screen', 'Share your screen', 'screen', handlers.screen);
    this.screen.hidden = !navigator.mediaDevices?.getDisplayMedia; // most phone browsers cannot
    this.chatBadge = h('span', { class: 'count-badge', id: 'chat-unread', hidden: true });
    this.chat = roundButton('ctl-chat', 'Chat', 'chat', handlers.chat);
    this.chat.append(this.chatBadge);
    this.people = roundButton('ctl-people', 'People', 'people', handlers.people);
    // Live captions and the transcript exist only in meetings with AI analysis.
    this.captions = roundButton('ctl-captions', 'Turn captions off', 'cc', handlers.captions);
    this.captions.hidden = true;
    this.transcript = roundButton('ctl-transcript', 'Transcript', 'transcript', handlers.transcript);
    this.transcript.hidden = true;
    this.peopleCount = h('span', { class: 'count-badge neutral', id: 'people-badge' });
    this.people.append(this.peopleCount);
    this.leave = h('button', { type: 'button', class: 'round leave', id: 'ctl-leave', 'aria-label': 'Leave the meeting', title: 'Leave', onclick: handlers.leave }, icon('leave'));
    this.end = h('button', { type: 'button', class: 'danger end-meeting', id: 'ctl-end', hidden: true, onclick: handlers.end }, 'End for all');
    this.publishGroup = h('div', { class: 'ctl-group publish' }, this.mic, this.cam, this.screen);
    this.el = h('footer', { class: 'controls', id: 'controls' },
      this.publishGroup,
      h('div', { class: 'ctl-group' }, this.captions, this.chat, this.transcript, this.people),
      h('div', { class: 'ctl-group' }, this.end, this.leave));
  }

  setMic(on, locked = false) {
    replace(this.mic, icon(on ? 'mic' : 'micOff'));
    this.mic.classList.toggle('off', !on);
    this.mic.setAttribute('aria-pressed', String(!on));
    const label = locked ? 'The host muted you' : on ? 'Mute' : 'Unmute';
    this.mic.setAttribute('aria-label', label);
    this.mic.title = label;
  }

  setCam(on) {
    replace(this.cam, icon(on ? 'cam' : 'camOff'));
    this.cam.classList.toggle('off', !on);
    this.cam.setAttribute('aria-pressed', String(!on));
    const label = on ? 'Turn camera off' : 'Turn camera on';
    this.cam.setAttribute('aria-label', label);
    this.cam.title = label;
  }

  setSharing(sharing, allowed = true) {
    this.screen.classList.toggle('active', sharing);
    this.screen.setAttribute('aria-pressed', String(sharing));
    const label = sharing ? 'Stop sharing' : allowed ? 'Share your screen' : 'Ask the host for permission to share';
    this.screen.setAttribute('aria-label', label);
    this.screen.title = label;
  }

  /** Audience members see no publish controls; only hosts see "End for all". */
  setRole(role) {
    this.publishGroup.hidden = role === 'audience';
    this.end.hidden = role !== 'host';
  }

  setUnread(n) {
    this.chatBadge.hidden = n === 0;
    this.chatBadge.textContent = n > 99 ? '99+' : String(n);
    this.chat.setAttribute('aria-label', n ? `Chat, ${n} unread` : 'Chat');
  }

  setPeople(n) {
    this.peopleCount.textContent = String(n);
  }

  setCaptions(available, on) {
    this.captions.hidden = !available;
    this.transcript.hidden = !available;
    this.captions.classList.toggle('active', on);
    this.captions.setAttribute('aria-pressed', String(on));
    const label = on ? 'Turn captions off' : 'Turn captions on';
    this.captions.setAttribute('aria-label', label);
    this.captions.title = label;
  }

  setPanel(which) {
    this.chat.classList.toggle('active', which === 'chat');
    this.transcript.classList.toggle('active', which === 'transcript');
    this.people.classList.toggle('active', which === 'people');
  }
}
