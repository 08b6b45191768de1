// The chat panel: history (paged back on demand), live messages, an unread count.
// Messages are text nodes only; what the user typed stays in the box until it is delivered.

import { h, replace } from '../dom.js';
import { describe } from '../errors.js';

const MAX_LENGTH = 4000;

function time(iso) {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export class ChatPanel {
  /**
   * send(text) -> Promise resolved when the server has the message (rejects with a reason);
   * history(beforeId) -> Promise<{items (oldest first), more}>.
   */
  constructor({ selfId, send, history, onUnread }) {
    this.selfId = selfId;
    this.sendFn = send;
    this.historyFn = history;
    this.onUnread = onUnread || (() => {});
    this.unread = 0;
    this.open = false;
    this.seen = new Set();
    this.oldestId = null;
    this.list = h('ol', { class: 'chat-list', id: 'chat-list', 'aria-live': 'polite' });
    this.more = h('button', { type: 'button', class: 'link-button chat-more', hidden: true, onclick: () => this.loadOlder() }, 'Show earlier messages');
    this.box = h('textarea', {
      id: 'chat-input', rows: 2, maxlength: MAX_LENGTH, placeholder: 'Message everyone',
      'aria-label': 'Chat message', enterkeyhint: 'send',
    });
    this.error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    this.sendBtn = h('button', { type: 'submit', class: 'primary', id: 'chat-send' }, 'Send');
    this.form = h('form', { class: 'chat-form', id: 'chat-form' }, this.box, this.sendBtn);
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    this.box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); }
    });
    this.el = h('section', { class: 'panel chat-panel', id: 'chat-panel', 'aria-label': 'Chat' },
      h('h2', { class: 'panel-title' }, 'Chat'), h('div', { class: 'chat-scroll' }, this.more, this.list), this.error, this.form);
  }

  setEnabled(enabled) {
    this.box.disabled = !enabled;
    this.sendBtn.disabled = !enabled;
    this.box.placeholder = enabled ? 'Message everyone' : 'Chat is turned off for this meeting';
  }

  async loadHistory() {
    try {
      const { items, more } = await this.historyFn(null);
      const fresh = items.filter((m) => !this.seen.has(m.message_id));
      const first = this.list.firstChild;
      for (const m of fresh) this.list.insertBefore(this.render(m), first);
      if (items.length) this.oldestId = items[0].message_id;
      this.more.hidden = !more;
      this.scrollDown();
    } catch (err) {
      this.showError(`Earlier messages could not be loaded: ${describe(err)}`);
    }
  }

  async loadOlder() {
    if (!this.oldestId) return;
    try {
      const { items, more } = await this.historyFn(this.oldestId);
      const first = this.list.firstChild;
      for (const m of items) if (!this.seen.has(m.message_id)) this.list.insertBefore(this.render(m), first);
      if (items.length) this.oldestId = items[0].message_id;
      this.more.hidden = !more;
    } catch (err) {
      this.showError(describe(err));
    }
  }

  render(m, pending = false) {
    if (m.message_id) this.seen.add(m.message_id);
    const mine = m.user_id === this.selfId;
    return h('li', { class: `chat-msg${mine ? ' mine' : ''}${pending ? ' pending' : ''}${m.is_private ? ' private' : ''}`, dataset: { messageId: String(m.message_id || '') } },
      h('div', { class: 'chat-meta' },
        h('span', { class: 'chat-author' }, mine ? 'You' : (m.full_name || m.username || 'Someone')),
        m.is_private ? h('span', { class: 'badge' }, 'private') : null,
        h('time', { class: 'chat-time' }, pending ? 'sending…' : time(m.created_at))),
      h('p', { class: 'chat-text' }, m.content));
  }

  /** A live message from signaling. */
  add(m) {
    if (m.message_id && this.seen.has(m.message_id)) return;
    const atBottom = this.isAtBottom();
    this.list.append(this.render(m));
    if (atBottom || m.user_id === this.selfId) this.scrollDown();
    if (!this.open && m.user_id !== this.selfId) {
      this.unread += 1;
      this.onUnread(this.unread);
    }
  }

  async submit() {
    const text = this.box.value.trim();
    if (!text) return;
    if (text.length > MAX_LENGTH) {
      this.showError(`Messages are limited to ${MAX_LENGTH} characters.`);
      return;
    }
    this.error.hidden = true;
    const pending = this.render({ user_id: this.selfId, content: text }, true);
    this.list.append(pending);
    this.scrollDown();
    const typed = this.box.value;
    this.box.value = '';
    try {
      const delivered = await this.sendFn(text);
      pending.remove();
      if (delivered) this.add(delivered);
    } catch (err) {
      pending.remove();
      // Nothing typed is lost: it goes back into the box (unless something new was typed).
      if (!this.box.value) this.box.value = typed;
      this.showError(`Your message was not sent: ${describe(err)}`);
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }

  setOpen(open) {
    this.open = open;
    if (open) {
      this.unread = 0;
      this.onUnread(0);
      this.scrollDown();
    }
  }

  isAtBottom() {
    const s = this.list.parentNode;
    return !s || s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  scrollDown() {
    const s = this.list.parentNode;
    if (s) s.scrollTop = s.scrollHeight;
  }

  clear() {
    replace(this.list);
    this.seen.clear();
  }
}
