// SPDX-License-Identifier: BSL-1.0
// The browser test's scenario (test/browser/run.sh starts the server and runs this): the example
// server's page in headless Chromium, two browser contexts as two devices of one user. Device A
// and device B log in (a wrong password is refused first); each lists both sessions and marks
// itself; the cookie as the browser stores it has HttpOnly, SameSite=Lax and the configured name,
// and JavaScript can neither read nor overwrite it; B revokes A and A is logged out on its next
// request; A logs in again and B logs out the others; the sensitive action; B logs out and its
// cookie is gone. Screenshots of each stage go to $WS_OUT for a person to look at.
//
// Steps that wait for issue 27's manager features are switched by `ready` below (or, to try
// them first, WS_READY=step-up,metadata in the environment). While one is off, the test checks
// today's answer instead (501, or null fields), so it fails as soon as the server changes and
// the step is still off.
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const ready = {
  // TODO(issue 27): true once POST /reauth records the authentication (mark_authenticated) and
  // POST /sensitive checks it (requires_recent_auth, run.sh passes --recent-auth 2).
  'step-up': false,
  // TODO(issue 27): true once GET /sessions reports device, address, auth_time, method.
  metadata: false,
};
for (const name of (process.env.WS_READY ?? '').split(',').filter(Boolean)) {
  if (!(name in ready)) throw new Error(`WS_READY: unknown step "${name}"`);
  ready[name] = true;
}

function setting(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (test/browser/run.sh sets it)`);
  return value;
}
const base = setting('WS_BASE');
const out = setting('WS_OUT');
const user = setting('WS_USER');
const password = setting('WS_PASSWORD');
const cookieName = setting('WS_COOKIE_NAME');
const recentAuthSeconds = Number(setting('WS_RECENT_AUTH'));

const started = Date.now();
const problems = [];  // uncaught page errors and Content-Security-Policy violations
const devices = [];
let stepNumber = 0;

async function step(name, fn) {
  const t0 = Date.now();
  stepNumber += 1;
  try {
    await fn();
  } catch (e) {
    console.log(`not ok ${stepNumber} - ${name}`);
    for (const d of devices) {
      await d.page.screenshot({ path: path.join(out, `failed-${stepNumber}-${d.name}.png`), fullPage: true })
        .catch(() => {});
    }
    throw e;
  }
  console.log(`ok ${stepNumber} - ${name} (${Date.now() - t0} ms)`);
}

async function device(browser, name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`${name}: uncaught ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) problems.push(`${name}: ${m.text()}`);
  });
  const d = { name, context, page };
  devices.push(d);
  return d;
}

async function shot(d, file) {
  await d.page.screenshot({ path: path.join(out, file), fullPage: true });
}

async function waitStatus(d, text) {
  await d.page.waitForFunction(
    (t) => document.getElementById('status').textContent.includes(t), text);
}

async function visible(d, selector) {
  await d.page.locator(selector).waitFor({ state: 'visible' });
}

async function submitLogin(d, name, pw) {
  await visible(d, '#login-view');
  await d.page.fill('#login-user', name);
  await d.page.fill('#login-password', pw);
  await d.page.click('#login-form button[type=submit]');
}

async function login(d) {
  await submitLogin(d, user, password);
  await visible(d, '#account-view');
  assert.equal(await d.page.textContent('#account-user'), user);
  await d.page.locator('#sessions tbody tr.current').waitFor();
  assert.equal(await d.page.locator('#login-view').isVisible(), false, 'the login form shows');
  assert.equal(await d.page.locator('#reauth-form').isVisible(), false,
    'the re-authentication form shows before anyone asked for it');
}

// The rows of the session table: [{handle, current, cells}].
async function rows(d) {
  return d.page.$$eval('#sessions tbody tr', (trs) => trs.map((tr) => ({
    handle: tr.dataset.handle,
    current: tr.classList.contains('current'),
    cells: [...tr.cells].map((td) => td.textContent.trim()),
  })));
}

async function waitRows(d, count) {
  await d.page.waitForFunction(
    (n) => document.querySelectorAll('#sessions tbody tr').length === n, count);
  return rows(d);
}

async function refresh(d) {
  await d.page.click('#refresh');
}

async function sessionCookie(d) {
  return (await d.context.cookies(base)).find((c) => c.name === cookieName);
}

// GET /sessions as the page's script would fetch it.
async function listing(d) {
  return d.page.evaluate(async () => (await fetch('/sessions')).json());
}

// The sensitive action on device d whose login is no longer recent: the page asks for the
// password, refuses a wrong one, then does the action; a second time it asks nothing.
async function stepUp(d) {
  await d.page.click('#sensitive');
  await visible(d, '#reauth-form');
  await waitStatus(d, 'Confirm your password to continue.');
  await shot(d, '8-b-reauth-asked.png');
  await d.page.fill('#reauth-password', `${password}-wrong`);
  await d.page.click('#reauth-form button[type=submit]');
  await waitStatus(d, 'Wrong password.');
  await d.page.fill('#reauth-password', password);
  await d.page.click('#reauth-form button[type=submit]');
  await waitStatus(d, 'Sensitive action done.');
  assert.equal(await d.page.locator('#reauth-form').isVisible(), false);
  // Recent now: no second prompt.
  await d.page.evaluate(() => { document.getElementById('status').textContent = ''; });
  await d.page.click('#sensitive');
  await waitStatus(d, 'Sensitive action done.');
  assert.equal(await d.page.locator('#reauth-form').isVisible(), false);
  await shot(d, '8-b-sensitive-done.png');
}

async function scenario(browser) {
  const a = await device(browser, 'a');
  const b = await device(browser, 'b');
  let bLoggedInAt = 0;

  await step('the page is served with a strict Content-Security-Policy and shows the login form',
    async () => {
      const res = await a.page.goto(`${base}/`);
      assert.equal(res.status(), 200);
      const csp = res.headers()['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      await visible(a, '#login-view');
      await shot(a, '1-login-form.png');
    });

  await step('a wrong password and an unknown user are refused, and set no cookie', async () => {
    await submitLogin(a, user, `${password}-wrong`);
    await waitStatus(a, 'Wrong user name or password.');
    await a.page.fill('#login-password', '');
    await submitLogin(a, `${user}-nobody`, password);
    await waitStatus(a, 'Wrong user name or password.');
    assert.equal(await sessionCookie(a), undefined);
    await shot(a, '2-wrong-password.png');
  });

  await step('device A logs in and sees one session, marked as this device', async () => {
    await login(a);
    const list = await waitRows(a, 1);
    assert.equal(list[0].current, true);
    assert.ok(list[0].cells.includes('This device'));
    await shot(a, '3-a-logged-in.png');
  });

  await step('the cookie is HttpOnly, SameSite=Lax, named as configured; JavaScript cannot read ' +
             'or overwrite it', async () => {
    const c = await sessionCookie(a);
    assert.ok(c, `no cookie named ${cookieName}`);
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Lax');
    assert.equal(c.path, '/');
    assert.equal(c.secure, false);  // plain http on loopback (--insecure-cookies)
    assert.equal(await a.page.evaluate(() => document.cookie), '');
    await a.page.evaluate((name) => { document.cookie = `${name}=forged; path=/`; }, cookieName);
    assert.equal((await sessionCookie(a)).value, c.value);
    assert.equal(await a.page.evaluate(() => document.cookie), '');
  });

  await step('device B logs in; each device lists both sessions and marks itself', async () => {
    await b.page.goto(`${base}/`);
    await login(b);
    bLoggedInAt = Date.now();
    const bList = await waitRows(b, 2);
    assert.equal(bList.filter((r) => r.current).length, 1);
    await refresh(a);
    const aList = await waitRows(a, 2);
    assert.equal(aList.filter((r) => r.current).length, 1);
    const aHandle = aList.find((r) => r.current).handle;
    const bHandle = bList.find((r) => r.current).handle;
    assert.notEqual(aHandle, bHandle);
    assert.equal(bList.find((r) => !r.current).handle, aHandle);
    assert.notEqual((await sessionCookie(a)).value, (await sessionCookie(b)).value);
    await shot(b, '4-b-sees-two-devices.png');
    await shot(a, '4-a-sees-two-devices.png');
  });

  await step(ready.metadata ? 'the listing shows device, address, auth time and method'
                            : 'the listing reports the fields not recorded yet as null (issue 27)',
    async () => {
      const body = await listing(b);
      assert.equal(body.user, user);
      assert.equal(body.sessions.length, 2);
      for (const s of body.sessions) {
        assert.equal(typeof s.handle, 'string');
        assert.ok(!Number.isNaN(Date.parse(s.created)) && !Number.isNaN(Date.parse(s.last_seen)));
        if (ready.metadata) {
          assert.match(s.device, /Chrome/);
          assert.match(s.address, /^127\.0\.0\./);
          assert.ok(!Number.isNaN(Date.parse(s.auth_time)));
          assert.equal(s.method, 'password');
          assert.equal(s.remembered, false);
        } else {
          for (const field of ['device', 'address', 'auth_time', 'method', 'remembered']) {
            assert.equal(s[field], null,
              `${field} is reported now: switch on ready.metadata in test/browser/identity.mjs`);
          }
        }
      }
    });

  await step('device B revokes device A', async () => {
    await b.page.click('#sessions tbody tr:not(.current) button.revoke');
    await waitStatus(b, 'That session has been ended.');
    const list = await waitRows(b, 1);
    assert.equal(list[0].current, true);
    await shot(b, '5-b-revoked-a.png');
  });

  await step('device A is logged out on its next request', async () => {
    await refresh(a);
    await visible(a, '#login-view');
    await waitStatus(a, 'You have been logged out');
    assert.equal((await a.page.evaluate(async () => (await fetch('/me')).status)), 401);
    await shot(a, '6-a-logged-out.png');
  });

  await step('device A logs in again; device B logs out the other devices', async () => {
    await login(a);
    await refresh(b);
    await waitRows(b, 2);
    await b.page.click('#logout-others');
    await waitStatus(b, 'Logged out 1 other session.');
    await waitRows(b, 1);
    await refresh(a);
    await visible(a, '#login-view');
    await waitStatus(a, 'You have been logged out');
    await shot(b, '7-b-logged-out-the-others.png');
  });

  if (ready['step-up']) {
    await step('the sensitive action asks for re-authentication once the login is not recent',
      async () => {
        const wait = bLoggedInAt + recentAuthSeconds * 1000 + 300 - Date.now();
        if (wait > 0) await b.page.waitForTimeout(wait);
        await stepUp(b);
      });
  } else {
    await step('the sensitive action answers 501 until issue 27 (then switch on ready["step-up"])',
      async () => {
        await b.page.click('#sensitive');
        await waitStatus(b, 'Not available yet');
        assert.match(await b.page.textContent('#status'), /issue 27/,
          'POST /sensitive changed: switch on ready["step-up"] in test/browser/identity.mjs');
        await shot(b, '8-b-sensitive-pending.png');
      });
    await step('the page\'s step-up flow, against /sensitive and /reauth simulated in the browser ' +
               'until issue 27', async () => {
      const csrfHeaders = [];
      let recent = false;
      const answer = (route, status, body) => {
        csrfHeaders.push(route.request().headers()['x-csrf-token'] ?? '');
        return route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
      };
      await b.page.route('**/sensitive', (route) => (recent
        ? answer(route, 200, { done: true }) : answer(route, 401, { error: 'reauth_required' })));
      await b.page.route('**/reauth', (route) => {
        recent = JSON.parse(route.request().postData()).password === password;
        return recent ? answer(route, 200, { auth_time: new Date().toISOString() })
                      : answer(route, 401, { error: 'wrong password' });
      });
      try {
        await stepUp(b);
      } finally {
        await b.page.unrouteAll();
      }
      assert.equal(csrfHeaders.length, 5);
      assert.ok(csrfHeaders.every((h) => h.length > 0), 'a request went without X-CSRF-Token');
    });
  }

  await step('device B logs out and its cookie is gone', async () => {
    await b.page.click('#logout');
    await visible(b, '#login-view');
    await waitStatus(b, 'Logged out.');
    assert.equal(await sessionCookie(b), undefined);
    await shot(b, '9-b-logged-out.png');
  });

  await step('no uncaught script error and no Content-Security-Policy violation', async () => {
    assert.deepEqual(problems, []);
  });
}

const browser = await chromium.launch({
  executablePath: setting('WS_CHROMIUM'),
  headless: true,
  timeout: 60000,
  // The flags Chromium needs on these machines (as root, no GPU, no network but loopback);
  // Playwright adds a fresh --user-data-dir of its own under $TMPDIR.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  console.log(`browser test: Chromium ${browser.version()}, steps ready: ${
    Object.entries(ready).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  await scenario(browser);
} finally {
  await browser.close();
}
console.log(`browser test: ${stepNumber} steps passed in ${Date.now() - started} ms`);
