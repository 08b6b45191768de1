// The video grid: one tile per camera (or avatar) and per screen share, laid out to use the
// space best from 1 to 25+ tiles; a screen share takes the stage and the rest go in a strip.

import { h, icon, initials, replace } from '../dom.js';

const ASPECT = 16 / 9;
const GAP = 8;
const MIN_TILE_W = 150;

/** Columns that make tiles largest for n tiles in w x h; falls back to scrolling when tiny. */
export function bestLayout(n, w, hgt, minW = MIN_TILE_W) {
  let best = { cols: 1, tileW: 0 };
  for (let cols = 1; cols <= Math.max(1, n); cols += 1) {
    const rows = Math.ceil(n / cols);
    const byWidth = (w - (cols - 1) * GAP) / cols;
    const byHeight = ((hgt - (rows - 1) * GAP) / rows) * ASPECT;
    const tileW = Math.min(byWidth, byHeight);
    if (tileW > best.tileW) best = { cols, tileW };
  }
  if (best.tileW < minW) {
    const cols = Math.max(1, Math.floor((w + GAP) / (minW + GAP)));
    return { cols, tileW: (w - (cols - 1) * GAP) / cols, scroll: true };
  }
  return best;
}

export class Grid {
  constructor() {
    this.tiles = new Map();
    this.stageMain = h('div', { class: 'stage-main' });
    this.strip = h('div', { class: 'tiles', id: 'tiles' });
    this.el = h('div', { class: 'stage', id: 'stage' }, this.stageMain, this.strip);
    this.featured = null;
    this.observer = new ResizeObserver(() => this.layout());
    this.observer.observe(this.el);
    this.onResize = null; // (tile, width, height) for the SFU's video-constraints
  }

  /** Get or create the tile `key`: `${peerOrUser}:${source}`. */
  tile(key, { userId, name, self = false, source = 'camera' }) {
    let t = this.tiles.get(key);
    if (t) return t;
    const video = h('video', { autoplay: true, playsInline: true, muted: true, class: self && source === 'camera' ? 'mirror' : '' });
    const avatar = h('div', { class: 'tile-avatar' }, h('span', { class: 'avatar' }, initials(name)));
    const mic = h('span', { class: 'tile-mic', 'aria-label': 'Microphone off', role: 'img' }, icon('micOff'));
    const label = h('span', { class: 'tile-name' }, source === 'screen' ? `${name} (screen)` : self ? `${name} (you)` : name);
    const el = h('div', {
      class: `tile source-${source}${self ? ' self' : ''} no-video`,
      dataset: { key, userId: String(userId), source },
    }, video, avatar, h('div', { class: 'tile-label' }, mic, label));
    t = { key, userId, source, self, el, video, label, mic, avatarEl: avatar, name, mid: null };
    this.tiles.set(key, t);
    if (source === 'screen' && !this.featured) this.featured = t;
    this.place();
    return t;
  }

  has(key) {
    return this.tiles.has(key);
  }

  setName(userId, name) {
    for (const t of this.tiles.values()) {
      if (t.userId !== userId) continue;
      t.name = name;
      t.label.textContent = t.source === 'screen' ? `${name} (screen)` : t.self ? `${name} (you)` : name;
      replace(t.avatarEl, h('span', { class: 'avatar' }, initials(name)));
    }
  }

  setStream(key, stream, mid = null) {
    const t = this.tiles.get(key);
    if (!t) return;
    const newMid = mid !== null && mid !== t.mid;
    t.mid = mid;
    if (newMid) requestAnimationFrame(() => this.layout()); // tell the SFU this tile's size
    if (t.video.srcObject !== stream) t.video.srcObject = stream;
    const live = Boolean(stream && stream.getVideoTracks().some((tr) => tr.readyState === 'live'));
    t.el.classList.toggle('no-video', !live || t.videoOff === true);
    if (live) t.video.play().catch(() => {});
  }

  setVideoOff(userId, off, source = 'camera') {
    for (const t of this.tiles.values()) {
      if (t.userId !== userId || t.source !== source) continue;
      t.videoOff = off;
      const live = Boolean(t.video.srcObject && t.video.srcObject.getVideoTracks().some((tr) => tr.readyState === 'live'));
      t.el.classList.toggle('no-video', off || !live);
    }
  }

  setAudioMuted(userId, muted) {
    for (const t of this.tiles.values()) {
      if (t.userId === userId && t.source === 'camera') t.el.classList.toggle('audio-muted', muted);
    }
  }

  setSpeaking(userId) {
    for (const t of this.tiles.values()) {
      t.el.classList.toggle('speaking', userId !== null && t.userId === userId && t.source === 'camera');
    }
  }

  remove(key) {
    const t = this.tiles.get(key);
    if (!t) return;
    t.video.srcObject = null;
    t.el.remove();
    this.tiles.delete(key);
    if (this.featured === t) {
      this.featured = [...this.tiles.values()].find((x) => x.source === 'screen') || null;
    }
    this.place();
  }

  removeUser(userId) {
    for (const t of [...this.tiles.values()]) if (t.userId === userId) this.remove(t.key);
  }

  /** Put the featured screen share on the stage and every other tile in the grid / strip. */
  place() {
    const featured = this.featured;
    this.el.classList.toggle('has-stage', Boolean(featured));
    if (featured && featured.el.parentNode !== this.stageMain) replace(this.stageMain, featured.el);
    if (!featured) replace(this.stageMain);
    const rest = [...this.tiles.values()].filter((t) => t !== featured)
      .sort((a, b) => Number(b.self) - Number(a.self));
    const inOrder = rest.length === this.strip.children.length
      && rest.every((t, i) => this.strip.children[i] === t.el);
    if (!inOrder) rest.forEach((t) => this.strip.append(t.el));
    this.layout();
  }

  layout() {
    const rest = this.tiles.size - (this.featured ? 1 : 0);
    const rect = this.strip.getBoundingClientRect();
    if (this.featured) {
      this.strip.style.removeProperty('--cols');
    } else if (rect.width > 0 && rect.height > 0) {
      const narrow = rect.width < 600;
      const { cols, tileW, scroll } = bestLayout(rest, rect.width, rect.height, narrow ? 130 : MIN_TILE_W);
      this.strip.style.setProperty('--cols', String(cols));
      this.strip.style.setProperty('--tile-w', `${Math.floor(tileW)}px`);
      this.strip.classList.toggle('scroll', Boolean(scroll));
    }
    this.el.dataset.count = String(this.tiles.size);
    if (this.onResize) {
      for (const t of this.tiles.values()) {
        if (t.self || !t.mid) continue;
        const r = t.el.getBoundingClientRect();
        this.onResize(t, Math.round(r.width * devicePixelRatio), Math.round(r.height * devicePixelRatio));
      }
    }
  }

  destroy() {
    this.observer.disconnect();
    for (const t of this.tiles.values()) t.video.srcObject = null;
    this.tiles.clear();
  }
}
