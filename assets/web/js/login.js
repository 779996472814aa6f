// Sign-in (/ and /login): paste a token; it is kept in this browser's localStorage
// and sent as `Authorization: Bearer` by every page. Who it is comes from
// GET /api/v1/me.

import {
  ApiError, api, applyI18n, clearToken, errorText, getToken, homeFor, lang, loadI18n, setToken, t,
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

async function main() {
  await loadI18n();
  applyI18n();
  $('lang-switch').addEventListener('click', () => {
    localStorage.setItem('yw.lang', lang() === 'en' ? 'zh' : 'en');
    location.reload();
  });
  $('sign-out').addEventListener('click', () => {
    clearToken();
    $('signed-in').hidden = true;
  });
  if (getToken()) {
    try {
      showSignedIn(await whoAmI());
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) clearToken();
    }
  }
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
  $('signin-status').textContent = errorText(e);
});
