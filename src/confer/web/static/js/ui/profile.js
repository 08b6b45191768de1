// The profile: name, e-mail, avatar URL, and the password.

import { auth, users } from '../api.js';
import { field, h, initials, replace } from '../dom.js';
import { busy, errorLine, notify } from './notices.js';

function avatar(profile) {
  // Only same-origin images load under the CSP; anything else shows initials.
  const url = profile.avatar_url || '';
  const sameOrigin = url.startsWith('/') && !url.startsWith('//');
  return sameOrigin
    ? h('img', { class: 'avatar big', src: url, alt: '' })
    : h('span', { class: 'avatar big', 'aria-hidden': 'true' }, initials(profile.full_name || profile.username));
}

export async function renderProfile(root, { navigate }) {
  replace(root, h('section', { class: 'screen narrow' }, h('p', { class: 'loading' }, 'Loading your profile…')));
  let profile;
  try {
    profile = await users.profile();
  } catch (err) {
    const error = errorLine();
    error.show(err);
    replace(root, h('section', { class: 'screen narrow' }, error,
      h('button', { type: 'button', onclick: () => renderProfile(root, { navigate }) }, 'Try again')));
    return;
  }

  const header = h('div', { class: 'profile-head' }, avatar(profile),
    h('div', {}, h('h1', { id: 'profile-name' }, profile.full_name || profile.username),
      h('p', { class: 'muted' }, `@${profile.username}`)));

  const fullName = field('Your name', { name: 'full_name', id: 'profile-full-name', value: profile.full_name || '', maxlength: 100 });
  const email = field('E-mail', { name: 'email', id: 'profile-email', type: 'email', value: profile.email, maxlength: 254 });
  const avatarUrl = field('Avatar URL', { name: 'avatar_url', id: 'profile-avatar', value: profile.avatar_url || '', maxlength: 500 },
    'An image on this server, such as /files/me.png.');
  const error = errorLine();
  const form = h('form', { class: 'card form', id: 'profile-form', novalidate: true },
    h('h2', {}, 'Profile'), fullName, email, avatarUrl, error,
    h('button', { class: 'primary', type: 'submit' }, 'Save profile'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.clear();
    try {
      const body = { full_name: fullName.input.value.trim(), email: email.input.value.trim() };
      if (avatarUrl.input.value.trim() || profile.avatar_url) body.avatar_url = avatarUrl.input.value.trim();
      profile = await busy(form, () => users.updateProfile(body));
      document.getElementById('profile-name').textContent = profile.full_name || profile.username;
      notify('Profile saved.', 'success');
    } catch (err) {
      error.show(err);
    }
  });

  const current = field('Current password', { name: 'current_password', id: 'pw-current', type: 'password', autocomplete: 'current-password' });
  const next = field('New password', { name: 'new_password', id: 'pw-new', type: 'password', autocomplete: 'new-password' });
  const pwError = errorLine();
  const pwForm = h('form', { class: 'card form', id: 'password-form', novalidate: true },
    h('h2', {}, 'Password'), current, next, pwError,
    h('button', { type: 'submit' }, 'Change password'));
  pwForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    pwError.clear();
    if (!current.input.value || !next.input.value) {
      pwError.show('Enter your current password and a new one.');
      return;
    }
    try {
      const fresh = next.input.value;
      await busy(pwForm, async () => {
        await users.changePassword({ current_password: current.input.value, new_password: fresh });
        // The change revokes every refresh token, ours included: log this tab back in.
        await auth.login(profile.username, fresh);
      });
      current.input.value = '';
      next.input.value = '';
      notify('Password changed. Other devices will have to log in again.', 'success');
    } catch (err) {
      pwError.show(err);
    }
  });

  replace(root, h('section', { class: 'screen narrow profile-screen' }, header, form, pwForm,
    h('p', {}, h('a', { href: '/', onclick: (e) => { e.preventDefault(); navigate('/'); } }, '← Back to meetings'))));
}
