// Log in / register. On success the router re-renders the page the user was heading to.

import { auth } from '../api.js';
import { append, field, h, replace } from '../dom.js';
import { busy, errorLine } from './notices.js';

export function renderAuth(root, { reason, next } = {}) {
  const panel = h('div', { class: 'auth-panel' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { class: 'auth-body' });
  let mode = 'login';

  const loginTab = h('button', { type: 'button', role: 'tab', class: 'tab', id: 'tab-login', onclick: () => show('login') }, 'Log in');
  const registerTab = h('button', { type: 'button', role: 'tab', class: 'tab', id: 'tab-register', onclick: () => show('register') }, 'Create account');
  tabs.append(loginTab, registerTab);

  // Both forms stay in memory, so switching tabs never loses what was typed.
  const loginForm = buildLogin();
  const registerForm = buildRegister();

  function show(which) {
    mode = which;
    loginTab.setAttribute('aria-selected', String(mode === 'login'));
    registerTab.setAttribute('aria-selected', String(mode === 'register'));
    replace(body, mode === 'login' ? loginForm : registerForm);
    (mode === 'login' ? loginForm : registerForm).querySelector('input')?.focus();
  }

  function buildLogin() {
    const user = field('Username or e-mail', { name: 'username', autocomplete: 'username', required: true, maxlength: 254 });
    const pass = field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 128 });
    const error = errorLine();
    const form = h('form', { class: 'card form', id: 'login-form', novalidate: true },
      user, pass, error, h('button', { class: 'primary wide', type: 'submit' }, 'Log in'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.clear();
      if (!user.input.value.trim() || !pass.input.value) {
        error.show('Enter your username (or e-mail) and password.');
        return;
      }
      try {
        await busy(form, () => auth.login(user.input.value.trim(), pass.input.value));
      } catch (err) {
        error.show(err);
        pass.input.select();
      }
    });
    return form;
  }

  function buildRegister() {
    const username = field('Username', {
      name: 'username', id: 'reg-username', autocomplete: 'username', required: true,
      minlength: 3, maxlength: 32, pattern: '[A-Za-z0-9_.\\-]{3,32}',
    }, '3–32 letters, digits, dots, dashes or underscores.');
    const fullName = field('Your name', { name: 'full_name', id: 'reg-full-name', autocomplete: 'name', maxlength: 100 },
      'Shown to others in meetings.');
    const email = field('E-mail', { name: 'email', id: 'reg-email', type: 'email', autocomplete: 'email', required: true, maxlength: 254 });
    const password = field('Password', {
      name: 'password', id: 'reg-password', type: 'password', autocomplete: 'new-password', required: true, maxlength: 128,
    }, 'At least 8 characters, mixing letters, digits and symbols.');
    const error = errorLine();
    const form = h('form', { class: 'card form', id: 'register-form', novalidate: true },
      username, fullName, email, password, error,
      h('button', { class: 'primary wide', type: 'submit' }, 'Create account'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.clear();
      if (!/^[A-Za-z0-9_.-]{3,32}$/.test(username.input.value.trim())) {
        error.show('Username: use 3–32 letters, digits, dots, dashes or underscores.');
        username.input.focus();
        return;
      }
      if (!email.input.value.includes('@')) {
        error.show('E-mail: enter a valid e-mail address.');
        email.input.focus();
        return;
      }
      try {
        await busy(form, () => auth.register({
          username: username.input.value.trim(),
          email: email.input.value.trim(),
          password: password.input.value,
          full_name: fullName.input.value.trim(),
        }));
      } catch (err) {
        error.show(err);
      }
    });
    return form;
  }

  append(panel, [
    h('h1', { class: 'brand-title' }, 'confer'),
    h('p', { class: 'tagline' }, next ? 'Log in or create an account to join the meeting.' : 'Video meetings you host yourself.'),
    reason ? h('p', { class: 'notice-line', role: 'status' }, reason) : null,
    tabs, body,
  ]);
  replace(root, h('section', { class: 'screen auth-screen' }, panel));
  show('login');
}

/**
 * The session ran out while the user was doing something: log in again in a dialog over the
 * page, so whatever they typed stays where it is. Resolves true once logged in.
 */
export function reloginDialog(username) {
  return new Promise((resolve) => {
    const user = field('Username or e-mail', { name: 'username', id: 'relogin-username', value: username || '', autocomplete: 'username' });
    const pass = field('Password', { name: 'password', id: 'relogin-password', type: 'password', autocomplete: 'current-password' });
    const error = errorLine();
    let done = false;
    const dialog = h('dialog', { class: 'dialog', id: 'relogin-dialog' });
    const form = h('form', { class: 'dialog-body', novalidate: true },
      h('p', { class: 'dialog-text' }, 'Your session has expired. Log in again to carry on; what you typed is still here.'),
      user, pass, error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', onclick: () => dialog.close() }, 'Not now'),
        h('button', { type: 'submit', class: 'primary' }, 'Log in')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.clear();
      try {
        await busy(form, () => auth.login(user.input.value.trim(), pass.input.value));
        done = true;
        dialog.close();
      } catch (err) {
        error.show(err);
      }
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(done);
    });
    dialog.append(form);
    document.body.append(dialog);
    dialog.showModal();
    (username ? pass.input : user.input).focus();
  });
}
