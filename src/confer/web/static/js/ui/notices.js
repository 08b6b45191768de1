// Plain-language notices: short-lived toasts, and an inline error line for forms.

import { h } from '../dom.js';
import { describe } from '../errors.js';

const DEFAULT_MS = { info: 4000, success: 4000, warning: 7000, error: 9000 };

function region() {
  let el = document.getElementById('toasts');
  if (!el) {
    el = h('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(el);
  }
  return el;
}

/** Show a toast; returns a function that removes it early. */
export function notify(text, kind = 'info', { timeout } = {}) {
  const close = () => toast.remove();
  const toast = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-text' }, text),
    h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', onclick: close }, '×'));
  region().append(toast);
  const ms = timeout ?? DEFAULT_MS[kind] ?? 4000;
  if (ms > 0) setTimeout(close, ms);
  return close;
}

export function notifyError(err) {
  if (err && err.name === 'ApiError' || err?.name === 'SignalingError') {
    // Expected failures; nothing for the console.
  } else if (err) {
    console.error(err);
  }
  return notify(describe(err), 'error');
}

/** An inline error area for a form: `show(err)` and `clear()`. */
export function errorLine() {
  const el = h('p', { class: 'form-error', role: 'alert', hidden: true });
  el.show = (err) => {
    el.textContent = typeof err === 'string' ? err : describe(err);
    el.hidden = false;
  };
  el.clear = () => {
    el.textContent = '';
    el.hidden = true;
  };
  return el;
}

/** Disable a form's controls while `work` runs; the inputs keep what the user typed. */
export async function busy(form, work) {
  const controls = [...form.querySelectorAll('button, input, select, textarea')];
  const before = controls.map((c) => c.disabled);
  controls.forEach((c) => { c.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    controls.forEach((c, i) => { c.disabled = before[i]; });
    form.removeAttribute('aria-busy');
  }
}

/**
 * An in-page confirmation (never window.confirm, which blocks and cannot be styled).
 * Resolves {ok, value}; `input` asks for an optional line of text (e.g. a reason).
 */
export function confirmDialog(text, { okLabel = 'OK', danger = false, input = null } = {}) {
  return new Promise((resolve) => {
    const field = input ? h('input', { type: 'text', id: 'dialog-input', maxlength: input.maxlength || 200, placeholder: input.placeholder || '', 'aria-label': input.label || 'Details' }) : null;
    const dialog = h('dialog', { class: 'dialog', id: 'confirm-dialog' },
      h('form', { method: 'dialog', class: 'dialog-body' },
        h('p', { class: 'dialog-text' }, text),
        field,
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'submit', value: 'cancel', id: 'dialog-cancel' }, 'Cancel'),
          h('button', { type: 'submit', value: 'ok', id: 'dialog-ok', class: danger ? 'danger' : 'primary' }, okLabel))));
    dialog.addEventListener('close', () => {
      resolve({ ok: dialog.returnValue === 'ok', value: field ? field.value.trim() : undefined });
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    (field || dialog.querySelector('#dialog-ok')).focus();
  });
}
