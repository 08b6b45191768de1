// The client's entry point: a small router over the History API, the top bar, the session.

import { auth } from './api.js';
import { h, replace } from './dom.js';
import * as session from './session.js';
import { reloginDialog, renderAuth } from './ui/auth.js';
import { renderTranscriptPage } from './ui/captions.js';
import { renderHome } from './ui/home.js';
import { renderJoin } from './ui/join.js';
import { notify } from './ui/notices.js';
import { renderProfile } from './ui/profile.js';

const main = document.getElementById('app');
const userMenu = document.getElementById('user-menu');

const ROUTES = [
  [/^\/$/, renderHome],
  [/^\/join\/?$/, renderHome],
  [/^\/profile\/?$/, renderProfile],
  [/^\/join\/([^/]+)\/?$/, renderJoin],
  [/^\/meetings\/(\d+)\/transcript\/?$/, renderTranscriptPage],
];

const REASONS = {
  expired: 'Your session has expired. Please log in again.',
  logout: null,
};

let cleanup = null;
let showingAuth = false;
let generation = 0;

export function navigate(path, { replace: swap = false } = {}) {
  if (path !== location.pathname + location.search) {
    history[swap ? 'replaceState' : 'pushState']({}, '', path);
  }
  render();
}

function renderUserMenu() {
  const s = session.current();
  if (!s) {
    replace(userMenu);
    return;
  }
  replace(userMenu,
    h('a', { href: '/profile', id: 'profile-link', class: 'user-name', onclick: (e) => { e.preventDefault(); navigate('/profile'); } }, s.username),
    h('button', {
      type: 'button', id: 'logout', class: 'link-button',
      onclick: async () => {
        try {
          await auth.logout();
        } catch {
          // Logged out locally either way; the server forgets the token when it expires.
        }
      },
    }, 'Log out'));
}

async function render(reason) {
  const mine = ++generation;
  if (cleanup) {
    const done = cleanup;
    cleanup = null;
    try {
      await done();
    } catch (err) {
      console.error(err);
    }
  }
  if (mine !== generation) return;
  document.body.classList.remove('in-room');
  renderUserMenu();
  const path = location.pathname;
  if (!session.current()) {
    showingAuth = true;
    renderAuth(main, { reason: REASONS[reason] ?? null, next: path.startsWith('/join/') ? path : null });
    return;
  }
  showingAuth = false;
  for (const [pattern, view] of ROUTES) {
    const m = path.match(pattern);
    if (!m) continue;
    const result = await view(main, { navigate, params: m.slice(1).map(decodeURIComponent) });
    if (typeof result === 'function') {
      if (mine === generation) cleanup = result;
      else await result();
    }
    return;
  }
  replace(main, h('section', { class: 'screen narrow' }, h('h1', {}, 'Page not found'),
    h('p', {}, h('a', { href: '/', onclick: (e) => { e.preventDefault(); navigate('/'); } }, 'Go to your meetings'))));
}

let lastUser = session.current()?.username;
let relogging = false;

session.onChange(async (s, reason) => {
  if (s) lastUser = s.username;
  if (!s && reason === 'expired' && !showingAuth && !relogging && !document.body.classList.contains('in-room')) {
    relogging = true;
    const ok = await reloginDialog(lastUser);
    relogging = false;
    if (ok) {
      renderUserMenu();
      return;
    }
  }
  if (relogging) return;
  if (!session.current()) {
    if (reason === 'expired') notify(REASONS.expired, 'warning');
    render(reason);
  } else if (showingAuth) {
    render();
  } else {
    renderUserMenu();
  }
});

window.addEventListener('popstate', () => render());
document.querySelector('[data-nav]')?.addEventListener('click', (e) => {
  e.preventDefault();
  navigate('/');
});

render();
