// Sign-in (/ and /login). People sign in with a user name and password: the
// service answers with an HttpOnly session cookie and a CSRF token (the readable
// yw_csrf cookie) that common.js echoes on every request that changes something.
// Machines and advanced users may still paste a token (folded below); it is kept
// in this browser's localStorage and sent as `Authorization: Bearer`. Who it is
// comes from GET /api/v1/me.

import {
  ApiError, api, applyI18n, clearToken, errorText, getToken, homeFor, lang, loadI18n, setToken,
  signedIn, signOut, t,
} from './common.js';

const $ = (id) => document.getElementById(id);

async function whoAmI() {
  return api('/api/v1/me');
}

function showSignedIn(me) {
  $('signed-in').hidden = false;
  const said = (unit) => t('signin.as', { user: me.user, role: t(`role.${me.role}`), unit });
  $('signed-in-as').textContent = said(me.unit_name || me.unit);
  $('continue').href = homeFor(me.role);
  // In English, the unit's English name from the organisation, when it has one.
  if (lang() === 'en') {
    api('/api/v1/units').then((r) => {
      const u = (r.items || []).find((x) => x.code === me.unit);
      if (u && u.name_en) $('signed-in-as').textContent = said(u.name_en);
    }).catch(() => {});
  }
}

// The words for a refused password sign-in.
function passwordError(e) {
  if (!(e instanceof ApiError)) return errorText(e);
  if (e.status === 401) return t('signin.bad_password');
  if (e.status === 429) {
    const minutes = Math.max(1, Math.ceil((e.retryAfter || 60) / 60));
    return t('signin.locked_out', { minutes });
  }
  if (e.status === 403) {
    return /device/.test(e.problem.detail || '') ? t('signin.other_device') : t('signin.locked');
  }
  return errorText(e);
}

async function main() {
  await loadI18n();
  applyI18n();
  $('lang-switch').addEventListener('click', () => {
    localStorage.setItem('yw.lang', lang() === 'en' ? 'zh' : 'en');
    location.reload();
  });
  $('sign-out').addEventListener('click', async () => {
    await signOut({ go: false });
    $('signed-in').hidden = true;
  });
  if (signedIn()) {
    try {
      showSignedIn(await whoAmI());
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) await signOut({ go: false });
    }
  }
  $('password-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const user = $('user').value.trim();
    const password = $('password').value;
    $('password-status').textContent = '';
    if (!user || !password) return;
    $('password-submit').disabled = true;
    try {
      const s = await api('/api/v1/session', { method: 'POST', body: { user, password } });
      // The session replaces a token kept in this browser: pages send the cookie.
      clearToken();
      location.href = homeFor(s.role);
    } catch (e) {
      $('password').value = '';
      $('password-status').textContent = passwordError(e);
    } finally {
      $('password-submit').disabled = false;
    }
  });
  $('signin').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    $('signin-status').textContent = '';
    if (!token) return;
    const before = getToken();
    setToken(token);
    try {
      const me = await whoAmI();
      location.href = homeFor(me.role);
    } catch (e) {
      if (before) setToken(before);
      else clearToken();
      $('signin-status').textContent = e instanceof ApiError && e.status === 401 ? t('signin.bad_token') : errorText(e);
    }
  });
  document.body.classList.add('ready');
}

main().catch((e) => {
  console.error(e);
  $('password-status').textContent = errorText(e);
});
