// SPDX-License-Identifier: BSL-1.0
// The example server's page: log in, list where you're logged in (this device marked), revoke a
// session, log out the others, re-authenticate for the sensitive action, log out. It talks to
// the server's JSON endpoints (example/server/identity_api.hpp) with fetch. The session cookie is
// HttpOnly, so this script never sees it; state-changing requests carry the CSRF token from
// /login or /csrf in X-CSRF-Token. Text from the server goes into the page as text, never as HTML.
'use strict';

const page = { csrf: null };
const byId = (id) => document.getElementById(id);

function say(text, kind = 'info') {
  const status = byId('status');
  status.textContent = text;
  status.dataset.kind = kind;
}

// One request to the server: {status, body} (status 0 if the server cannot be reached).
async function call(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET' && page.csrf) init.headers['X-CSRF-Token'] = page.csrf;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    return { status: 0, body: { error: 'the server cannot be reached' } };
  }
  let data = {};
  try {
    data = await res.json();
  } catch {
    // Not JSON: keep {}.
  }
  return { status: res.status, body: data };
}

function problem(r) {
  return r.body.error ?? `HTTP ${r.status}`;
}

function showLogin(message, kind) {
  page.csrf = null;
  byId('account-view').hidden = true;
  byId('reauth-form').hidden = true;
  byId('login-view').hidden = false;
  byId('login-password').value = '';
  if (message) say(message, kind);
}

// This session was ended by the server: revoked from another device, logged out everywhere,
// or expired.
function ended() {
  showLogin('You have been logged out: this session was ended (from another device, or it expired).',
            'error');
}

async function showAccount(user) {
  byId('account-user').textContent = user;
  byId('login-view').hidden = true;
  byId('account-view').hidden = false;
  await loadSessions();
}

// A table cell; a field the server does not record (null) shows as a dash.
function cell(value) {
  const td = document.createElement('td');
  if (value === null || value === undefined) {
    td.textContent = '\u2014';
    td.className = 'unknown';
    td.title = 'not recorded by this server yet';
  } else {
    td.textContent = String(value);
  }
  return td;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : null;
}

function yesNo(flag) {
  return flag === null || flag === undefined ? null : (flag ? 'yes' : 'no');
}

async function loadSessions() {
  const r = await call('GET', '/sessions');
  if (r.status === 401) return ended();
  if (r.status !== 200) return say(`Cannot list your sessions: ${problem(r)}`, 'error');
  const rows = r.body.sessions.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.handle = s.handle;
    if (s.current) tr.classList.add('current');
    tr.append(cell(s.device), cell(s.address), cell(when(s.auth_time)), cell(s.method),
              cell(yesNo(s.remembered)), cell(when(s.created)), cell(when(s.last_seen)));
    const last = document.createElement('td');
    if (s.current) {
      last.textContent = 'This device';
      last.className = 'this-device';
    } else {
      const revokeButton = document.createElement('button');
      revokeButton.type = 'button';
      revokeButton.className = 'revoke';
      revokeButton.textContent = 'Revoke';
      revokeButton.addEventListener('click', () => revoke(s.handle));
      last.append(revokeButton);
    }
    tr.append(last);
    return tr;
  });
  byId('sessions').tBodies[0].replaceChildren(...rows);
}

async function revoke(handle) {
  const r = await call('POST', '/sessions/revoke', { handle });
  if (r.status === 401) return ended();
  if (r.status === 200) say('That session has been ended.');
  else if (r.status === 404) say('That session had already ended.');
  else say(`Cannot end that session: ${problem(r)}`, 'error');
  await loadSessions();
}

async function logoutOthers() {
  const r = await call('POST', '/logout-others');
  if (r.status === 401) return ended();
  if (r.status !== 200) return say(`Cannot log out the other devices: ${problem(r)}`, 'error');
  say(`Logged out ${r.body.revoked} other session${r.body.revoked === 1 ? '' : 's'}.`);
  await loadSessions();
}

async function sensitive() {
  const r = await call('POST', '/sensitive');
  if (r.status === 200) return say('Sensitive action done.');
  if (r.status === 401 && r.body.error === 'reauth_required') {
    byId('reauth-form').hidden = false;
    byId('reauth-password').focus();
    return say('Confirm your password to continue.');
  }
  if (r.status === 401) return ended();
  if (r.status === 501) return say(`Not available yet: ${problem(r)}`, 'error');
  say(`The sensitive action failed: ${problem(r)}`, 'error');
}

async function reauth(event) {
  event.preventDefault();
  const input = byId('reauth-password');
  const password = input.value;
  input.value = '';
  say('Checking your password\u2026');
  const r = await call('POST', '/reauth', { password });
  if (r.status === 200) {
    byId('reauth-form').hidden = true;
    return sensitive();
  }
  if (r.status === 401 && r.body.error === 'wrong password') return say('Wrong password.', 'error');
  if (r.status === 401) return ended();
  byId('reauth-form').hidden = true;
  if (r.status === 501) return say(`Not available yet: ${problem(r)}`, 'error');
  say(`Cannot confirm your password: ${problem(r)}`, 'error');
}

async function login(event) {
  event.preventDefault();
  const user = byId('login-user').value;
  const password = byId('login-password').value;
  byId('login-password').value = '';
  const remember = byId('login-remember').checked;
  say('Logging in\u2026');
  const r = await call('POST', '/login', { user, password, remember });
  if (r.status === 401) return say('Wrong user name or password.', 'error');
  if (r.status !== 200) return say(`Cannot log in: ${problem(r)}`, 'error');
  page.csrf = r.body.csrf;
  say('');
  await showAccount(r.body.user);
}

async function logout() {
  const r = await call('POST', '/logout');
  // 403: this session had already ended, so its token no longer verifies.
  if (r.status === 200 || r.status === 403) return showLogin('Logged out.');
  say(`Cannot log out: ${problem(r)}`, 'error');
}

async function start() {
  byId('login-form').addEventListener('submit', login);
  byId('reauth-form').addEventListener('submit', reauth);
  byId('reauth-cancel').addEventListener('click', () => { byId('reauth-form').hidden = true; });
  byId('refresh').addEventListener('click', loadSessions);
  byId('logout-others').addEventListener('click', logoutOthers);
  byId('sensitive').addEventListener('click', sensitive);
  byId('logout').addEventListener('click', logout);

  const me = await call('GET', '/me');
  if (me.status !== 200) return showLogin();
  const token = await call('GET', '/csrf');
  page.csrf = token.body.csrf ?? null;
  await showAccount(me.body.user);
}

document.addEventListener('DOMContentLoaded', start);
