// Meeting codes and invite links: parsing what people paste, and copying links.

const CODE = /^[A-Z0-9]{3}-[A-Z0-9]{3}-[A-Z0-9]{3}$/;

/** Accept "ABC-DEF-GHI", "abcdefghi", or a whole invite link; null when it is none of those. */
export function parseCode(text) {
  let t = String(text || '').trim();
  const fromLink = t.match(/\/join\/([^/?#\s]+)/);
  if (fromLink) t = decodeURIComponent(fromLink[1]);
  t = t.toUpperCase().replace(/[\s_]/g, '');
  if (/^[A-Z0-9]{9}$/.test(t)) t = `${t.slice(0, 3)}-${t.slice(3, 6)}-${t.slice(6)}`;
  return CODE.test(t) ? t : null;
}

/** The link to share: the server's `join_url`, or this origin's when it has none. */
export function inviteUrl(meeting) {
  return meeting.join_url || `${location.origin}/join/${meeting.meeting_code}`;
}

/** Copy text; falls back to a selected hidden field where the Clipboard API is refused. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}
