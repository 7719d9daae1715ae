// The web console's end-to-end scenarios in headless Chromium, run by
// tests/console.rs against a real tessera (BASE_URL) with prepared data:
// the admin (ADMIN_PASSWORD), an imported legacy token "old console token",
// and a person "bob" with tokens "bob desktop" and "bob mobile". The server
// runs with non-default validity figures (POLICY_* below), which the Add
// token dialog must show: they come from GET /V4/AccessToken/Policy.
//
// Every scenario runs at 1280×800 and again at 390×844, each step with a
// screenshot in SCREENSHOT_DIR. Every request to a host other than the
// server is aborted and counted: the suite fails if the page attempted any.
// Exit status 0 when every check passed.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const SHOTS = process.env.SCREENSHOT_DIR || 'screenshots';
const LEGACY_MESSAGE = 'This token was upgraded from an older format and cannot be edited.';
assert.ok(BASE && ADMIN_PASSWORD, 'BASE_URL and ADMIN_PASSWORD are required');
const ORIGIN = new URL(BASE);
/** The server's validity figures, in days (tests/console.rs passes them to `tessera serve`). */
const figure = (name) => {
  const n = Number(process.env[name]);
  assert.ok(Number.isInteger(n) && n > 0, `${name} is required`);
  return n;
};
const POLICY = {
  renewableDefault: figure('POLICY_RENEWABLE_DEFAULT_DAYS'),
  renewableMax: figure('POLICY_RENEWABLE_MAX_DAYS'),
  scimDefault: figure('POLICY_SCIM_DEFAULT_DAYS'),
  oneTouchDefault: figure('POLICY_ONE_TOUCH_DEFAULT_DAYS'),
  oneTouchMax: figure('POLICY_ONE_TOUCH_MAX_DAYS'),
};
mkdirSync(SHOTS, { recursive: true });

const SIZES = [
  { tag: 'desktop', width: 1280, height: 800 },
  { tag: 'mobile', width: 390, height: 844 },
];

const external = [];
const problems = [];

function step(text) {
  console.log(`console: ${text}`);
}

/** The RateLimit-Limit a check of `token` answers with (null without one):
 *  the limit the server holds for it. */
async function checkedLimit(token) {
  const r = await fetch(new URL('/auth/check', BASE), {
    headers: { Authorization: `Bearer ${token}`, 'X-Original-Method': 'GET', 'X-Original-URI': '/Client' },
  });
  assert.equal(r.status, 200, 'the check of a rate-limited token');
  const v = r.headers.get('ratelimit-limit');
  return v === null ? null : Number(v);
}

/** forward auth, as nginx would ask it */
async function check(token, method, uri) {
  const r = await fetch(new URL('/auth/check', BASE), {
    headers: {
      Authorization: `Bearer ${token}`,
      'X-Original-Method': method,
      'X-Original-URI': uri,
    },
  });
  return r.status;
}

function isoDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The local date `days` days from now. */
function inDays(days) {
  return isoDate(new Date(Date.now() + days * 86400e3));
}

async function scenario(browser, size) {
  const context = await browser.newContext({
    viewport: { width: size.width, height: size.height },
    deviceScaleFactor: 1,
    isMobile: size.tag === 'mobile',
    hasTouch: size.tag === 'mobile',
  });
  // The network is cut off: only the server itself answers.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.host === ORIGIN.host && url.protocol === ORIGIN.protocol) return route.continue();
    external.push(url.href);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`[${size.tag}] page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) {
      problems.push(`[${size.tag}] ${m.text()}`);
    }
  });
  // The token bodies the page sends (create and edit), to see what an edit leaves out.
  const sent = [];
  page.on('request', (r) => {
    if (/\/V4\/AccessToken(\/\d+)?$/.test(new URL(r.url()).pathname) && ['POST', 'PUT'].includes(r.method())) {
      sent.push({ method: r.method(), body: JSON.parse(r.postData() || '{}') });
    }
  });
  let n = 0;
  const shot = async (name) => {
    n += 1;
    const file = join(SHOTS, `${size.tag}-${String(n).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file });
  };
  const tag = size.tag;
  const main = page.locator('main');
  const heading = (name) => page.getByRole('heading', { level: 1, name, exact: true });
  const row = (name) => main.getByRole('row').filter({ has: page.getByRole('rowheader').getByText(name, { exact: true }) });

  try {
    // ---- sign in ----------------------------------------------------------------
    step(`[${tag}] sign in`);
    await page.goto(new URL('/console', BASE).href); // redirected to /console/
    assert.ok(page.url().endsWith('/console/'), page.url());
    await heading('Sign in to Tessera').waitFor();
    await shot('sign-in');
    await main.getByLabel('User name').fill('admin');
    await main.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await main.getByRole('alert').filter({ hasText: 'Invalid user name or password' }).waitFor();
    await shot('sign-in-refused');
    await main.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await heading('Access tokens').waitFor();
    await row('old console token').waitFor();
    // The session lives in a JS variable only.
    const stored = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
    assert.deepEqual(stored, [0, 0, ''], 'nothing is stored in the browser');
    assert.equal(await row('old console token').getByText('Legacy', { exact: true }).count(), 1, 'legacy mark');
    await shot('tokens');

    // ---- add a Custom token ---------------------------------------------------------
    step(`[${tag}] add a Custom token`);
    await page.getByRole('button', { name: 'Add token' }).click();
    let dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Add token' }).waitFor();
    // The server's figures (not CONTRACT §2's defaults): the default filled in,
    // the limit beside.
    const inDefault = inDays(POLICY.renewableDefault);
    const inMax = inDays(POLICY.renewableMax);
    assert.equal(await dialog.getByLabel('Renewable until').inputValue(), inDefault, 'default renewableUntil');
    const renewableNote = (await dialog.locator('#renewable-until-note').textContent()).trim();
    assert.equal(renewableNote,
      `Default ${inDefault} (creation + ${POLICY.renewableDefault} days); at most ${inMax} (creation + ${POLICY.renewableMax} days).`,
      'the note beside Renewable until');
    assert.equal(await dialog.getByLabel('Renewable until').getAttribute('max'), inMax);
    assert.equal(await dialog.getByLabel('Expiry date').isVisible(), false);
    await dialog.getByLabel('Scope').selectOption({ label: 'Microsoft SCIM' });
    assert.equal(await dialog.getByLabel('Expiry date').inputValue(), inDays(POLICY.scimDefault));
    await dialog.getByText(`(creation + ${POLICY.scimDefault} days)`).waitFor();
    assert.equal(await dialog.getByLabel('Renewable until').isVisible(), false);
    await dialog.getByLabel('Scope').selectOption({ label: '1-Touch recovery' });
    assert.equal(await dialog.getByLabel('Expiry date').inputValue(), inDays(POLICY.oneTouchDefault));
    await dialog.getByText(`at most ${inDays(POLICY.oneTouchMax)} (creation + ${POLICY.oneTouchMax} days)`).waitFor();
    await dialog.getByLabel('Scope').selectOption({ label: 'Custom' });
    await dialog.getByLabel('Token name').fill(`ci ${tag}`);
    // An API error appears beside the field it names.
    await dialog.getByRole('button', { name: 'Submit' }).click();
    const endpointsError = dialog.locator('#endpoints-error');
    await endpointsError.filter({ hasText: 'apiEndpoints' }).waitFor();
    assert.equal(await dialog.getByLabel('Endpoints').getAttribute('aria-invalid'), 'true');
    await shot('add-token-field-error');
    await dialog.getByLabel('Endpoints').fill('/Client\nGET /Job');
    await dialog.getByLabel('IP allowlist').fill('127.0.0.1\n::1');
    // Past the server's limit (a day after it): refused beside the field.
    await dialog.getByLabel('Renewable until').fill(inDays(POLICY.renewableMax + 1));
    await dialog.getByRole('button', { name: 'Submit' }).click();
    await dialog.locator('#renewable-until-error').filter({ hasText: 'past the limit' }).waitFor();
    await dialog.getByLabel('Renewable until').fill(inMax);
    await shot('add-token');
    await dialog.getByRole('button', { name: 'Submit' }).click();
    await dialog.getByText('cannot be shown again').waitFor();
    const access = await dialog.getByLabel('Access token').inputValue();
    const refresh = await dialog.getByLabel('Refresh token').inputValue();
    assert.ok(access.length > 40 && refresh.length > 40 && access !== refresh, 'both secrets shown');
    assert.equal(await dialog.getByRole('button', { name: 'Copy' }).count(), 2);
    await dialog.getByRole('button', { name: 'Copy' }).first().click();
    await dialog.getByText('Copied').waitFor();
    await shot('token-created');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await row(`ci ${tag}`).waitFor();
    assert.match(await row(`ci ${tag}`).innerText(), new RegExp(`Renewable until ${inMax}`));
    await shot('token-listed');

    // ---- the shown token works, within its scope ---------------------------------
    step(`[${tag}] use the access token at /auth/check`);
    assert.equal(await check(access, 'GET', '/Client/5'), 200);
    assert.equal(await check(access, 'GET', '/Job/7'), 200);
    assert.equal(await check(access, 'POST', '/Job/7'), 403);
    assert.equal(await check(access, 'GET', '/MediaAgent'), 403);

    // ---- edit it ---------------------------------------------------------------------
    step(`[${tag}] edit the token`);
    await row(`ci ${tag}`).getByRole('button', { name: 'Edit' }).click();
    dialog = page.getByRole('dialog');
    assert.equal(await dialog.getByLabel('Token name').inputValue(), `ci ${tag}`);
    assert.equal(await dialog.getByLabel('Scope').inputValue(), '3');
    assert.equal(await dialog.getByLabel('Endpoints').inputValue(), '/Client\nGET /Job');
    assert.equal(await dialog.getByLabel('IP allowlist').inputValue(), '127.0.0.1\n::1');
    assert.equal(await dialog.getByLabel('Renewable until').inputValue(), inMax);
    await dialog.getByLabel('Token name').fill(`ci ${tag} edited`);
    await dialog.getByLabel('Endpoints').fill('/Client\nGET /Job\n/MediaAgent');
    await shot('edit-token');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row(`ci ${tag} edited`).waitFor();
    assert.equal(await check(access, 'GET', '/MediaAgent'), 200);
    // Only what changed was sent: no rateLimit (the token has none, the fields stayed empty).
    assert.deepEqual(Object.keys(sent.at(-1).body).sort(), ['apiEndpoints', 'tokenName'], 'the edit body');

    // ---- its activity: created, edited ---------------------------------------------
    step(`[${tag}] the token's activity`);
    await row(`ci ${tag} edited`).getByRole('button', { name: 'Activity' }).click();
    await heading(`Activity of ci ${tag} edited`).waitFor();
    await main.getByRole('rowheader').getByText('Token created', { exact: true }).waitFor();
    await main.getByRole('rowheader').getByText('Token edited', { exact: true }).waitFor();
    assert.equal(await main.getByRole('rowheader').count(), 2, 'only this token\'s events');
    await shot('token-activity');
    await page.getByRole('button', { name: 'Back to tokens' }).click();
    await heading('Access tokens').waitFor();

    // ---- a rate limit: add, show, edit, refuse, remove ------------------------------
    step(`[${tag}] a token with a rate limit`);
    const limited = `limited ${tag}`;
    await page.getByRole('button', { name: 'Add token' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByRole('group', { name: 'Rate limit' }).waitFor();
    assert.equal(await dialog.getByLabel('Requests', { exact: true }).inputValue(), '', 'no limit by default');
    assert.equal(await dialog.getByLabel('Per seconds', { exact: true }).inputValue(), '');
    await dialog.getByLabel('Token name').fill(limited);
    await dialog.getByLabel('Requests', { exact: true }).fill('100');
    // Past the server's window (a day): refused beside the field, nothing created.
    await dialog.getByLabel('Per seconds', { exact: true }).fill('100000');
    await dialog.getByRole('button', { name: 'Submit' }).click();
    await dialog.locator('#rate-seconds-error').filter({ hasText: 'rateLimit.perSeconds' }).waitFor();
    assert.equal(await dialog.getByLabel('Per seconds', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(await dialog.locator('#rate-requests-error').textContent(), '', 'the other figure is not blamed');
    await shot('add-rate-limit-error');
    await dialog.getByLabel('Per seconds', { exact: true }).fill('60');
    await dialog.getByRole('button', { name: 'Submit' }).click();
    await dialog.getByText('cannot be shown again').waitFor();
    const limitedAccess = await dialog.getByLabel('Access token').inputValue();
    assert.deepEqual(sent.at(-1).body.rateLimit, { requests: 100, perSeconds: 60 }, 'the create body');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await row(limited).waitFor();
    assert.match(await row(limited).innerText(), /Rate limit 100 \/ 60 s/);
    assert.equal(await row(`ci ${tag} edited`).getByText(/Rate limit/).count(), 0, 'no limit shown for a token without one');
    assert.equal(await checkedLimit(limitedAccess), 100);
    await row(limited).scrollIntoViewIfNeeded();
    await shot('rate-limit-listed');
    // Edit it: the fields hold the limit; another one is saved.
    await row(limited).getByRole('button', { name: 'Edit' }).click();
    dialog = page.getByRole('dialog');
    assert.equal(await dialog.getByLabel('Requests', { exact: true }).inputValue(), '100');
    assert.equal(await dialog.getByLabel('Per seconds', { exact: true }).inputValue(), '60');
    await dialog.getByLabel('Requests', { exact: true }).fill('250');
    await dialog.getByLabel('Per seconds', { exact: true }).fill('3600');
    await shot('edit-rate-limit');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row(limited).getByText('Rate limit 250 / 3600 s').waitFor();
    assert.deepEqual(sent.at(-1).body, { rateLimit: { requests: 250, perSeconds: 3600 } }, 'the edit body');
    assert.equal(await checkedLimit(limitedAccess), 250);
    // An invalid figure: the server's error beside it, and nothing changes
    // (not the limit, not the name edited with it).
    const edits = sent.length;
    await row(limited).getByRole('button', { name: 'Edit' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Token name').fill(`${limited} renamed`);
    await dialog.getByLabel('Requests', { exact: true }).fill('0');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.locator('#rate-requests-error').filter({ hasText: 'rateLimit.requests' }).waitFor();
    assert.equal(await dialog.getByLabel('Requests', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(sent.length, edits + 1, 'one edit sent');
    await shot('edit-rate-limit-error');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('navigation').getByRole('button', { name: 'Access tokens' }).click();
    await row(limited).getByText('Rate limit 250 / 3600 s').waitFor();
    assert.equal(await row(`${limited} renamed`).count(), 0, 'the refused edit changed nothing');
    assert.equal(await checkedLimit(limitedAccess), 250);
    // Both fields emptied: the limit is removed (rateLimit null).
    await row(limited).getByRole('button', { name: 'Edit' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Requests', { exact: true }).fill('');
    await dialog.getByLabel('Per seconds', { exact: true }).fill('');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual(sent.at(-1).body, { rateLimit: null }, 'the removing edit');
    await row(limited).waitFor();
    await page.waitForFunction((name) => [...document.querySelectorAll('main tbody tr')]
      .some((tr) => tr.querySelector('th').textContent === name && !/Rate limit/.test(tr.textContent)), limited);
    assert.equal(await checkedLimit(limitedAccess), null, 'no limit left');
    await shot('rate-limit-removed');
    await row(limited).getByRole('button', { name: 'Edit' }).click();
    dialog = page.getByRole('dialog');
    assert.equal(await dialog.getByLabel('Requests', { exact: true }).inputValue(), '');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });

    // ---- a legacy token cannot be edited -------------------------------------------
    step(`[${tag}] open the legacy token`);
    await row('old console token').getByRole('button', { name: 'Edit' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByText(LEGACY_MESSAGE, { exact: true }).waitFor();
    assert.equal(await dialog.getByRole('button', { name: 'Save' }).count(), 0, 'no Save for a legacy token');
    assert.equal(await dialog.getByLabel('Token name').isDisabled(), true);
    await shot('legacy-token');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    if (process.env.LEGACY_TOKEN) assert.equal(await check(process.env.LEGACY_TOKEN, 'GET', '/Client'), 200);

    // ---- revoke it, after a confirmation ------------------------------------------
    step(`[${tag}] revoke the token`);
    await row(`ci ${tag} edited`).getByRole('button', { name: 'Revoke' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByText(`Revoke “ci ${tag} edited”?`).waitFor();
    await shot('revoke-confirm');
    // Cancel first: nothing happens.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await check(access, 'GET', '/Client/5'), 200);
    await row(`ci ${tag} edited`).getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await row(`ci ${tag} edited`).waitFor({ state: 'detached' });
    assert.equal(await check(access, 'GET', '/Client/5'), 401);

    // ---- the account's activity and password -------------------------------------
    step(`[${tag}] account activity`);
    await page.getByRole('navigation').getByRole('button', { name: 'Activity' }).click();
    await heading('Activity').waitFor();
    await main.getByRole('rowheader').getByText('Token revoked', { exact: true }).first().waitFor();
    await main.getByRole('rowheader').getByText('Sign-in refused', { exact: true }).first().waitFor();
    await shot('activity');
    step(`[${tag}] change the password, and back`);
    await page.getByRole('navigation').getByRole('button', { name: 'Account' }).click();
    await heading('Account').waitFor();
    await main.getByLabel('Current password').fill('not it');
    await main.getByLabel('New password', { exact: true }).fill('console-new-pw');
    await main.getByLabel('New password again').fill('console-new-pw');
    await page.getByRole('button', { name: 'Change password' }).click();
    await main.getByRole('alert').filter({ hasText: 'old password does not match' }).waitFor();
    await shot('password-refused');
    for (const [from, to] of [[ADMIN_PASSWORD, 'console-new-pw'], ['console-new-pw', ADMIN_PASSWORD]]) {
      await main.getByLabel('Current password').fill(from);
      await main.getByLabel('New password', { exact: true }).fill(to);
      await main.getByLabel('New password again').fill(to);
      await page.getByRole('button', { name: 'Change password' }).click();
      // The view is drawn afresh (empty fields) once the change is done.
      await page.waitForFunction(() => document.getElementById('account-current').value === '');
      await main.getByText('Password changed. Your other sessions have ended.').waitFor();
    }
    await shot('password-changed');

    // ---- users (admin) -----------------------------------------------------------
    step(`[${tag}] users page`);
    await page.getByRole('navigation').getByRole('button', { name: 'Users' }).click();
    await heading('Users').waitFor();
    await row('bob').waitFor();
    await shot('users');
    // A person needs a password: the error sits beside the field.
    await main.getByLabel('User name').fill(`carol-${tag}`);
    await main.getByRole('button', { name: 'Create user' }).click();
    await main.locator('#password-error').filter({ hasText: 'password' }).waitFor();
    await shot('users-field-error');
    await main.getByLabel('User name').fill(`svc-${tag}`);
    await main.getByLabel('Kind').selectOption('service');
    await main.getByRole('button', { name: 'Create user' }).click();
    await row(`svc-${tag}`).waitFor();
    assert.match(await row(`svc-${tag}`).innerText(), /Service account/);
    // A service account's owner may add its tokens.
    await row(`svc-${tag}`).getByRole('button', { name: 'Access tokens' }).click();
    await heading(`Access tokens of svc-${tag}`).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add token' }).count(), 1);
    await page.getByRole('button', { name: 'Add token' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Token name').fill('robot');
    await dialog.getByRole('button', { name: 'Submit' }).click();
    const robot = await dialog.getByLabel('Access token').inputValue();
    await dialog.getByRole('button', { name: 'Done' }).click();
    await row('robot').waitFor();
    assert.equal(await check(robot, 'GET', '/Anything'), 200);
    await page.getByRole('button', { name: 'Back to users' }).click();
    await row(`svc-${tag}`).getByRole('button', { name: 'Delete' }).click();
    dialog = page.getByRole('dialog');
    await shot('delete-user-confirm');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await row(`svc-${tag}`).waitFor({ state: 'detached' });
    assert.equal(await check(robot, 'GET', '/Anything'), 401);

    // ---- an admin revokes another user's token ----------------------------------
    step(`[${tag}] admin revokes bob's token`);
    await row('bob').getByRole('button', { name: 'Access tokens' }).click();
    await heading('Access tokens of bob').waitFor();
    await row(`bob ${tag}`).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add token' }).count(), 0, 'no Add token for another person');
    await shot('other-user-tokens');
    // The admin may edit it too.
    await row(`bob ${tag}`).getByRole('button', { name: 'Edit' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Save' }).waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    const bobToken = process.env[`BOB_TOKEN_${tag.toUpperCase()}`];
    if (bobToken) assert.equal(await check(bobToken, 'GET', '/Client'), 200);
    await row(`bob ${tag}`).getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await row(`bob ${tag}`).waitFor({ state: 'detached' });
    if (bobToken) assert.equal(await check(bobToken, 'GET', '/Client'), 401);

    // ---- sign out -----------------------------------------------------------------
    step(`[${tag}] sign out`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading('Sign in to Tessera').waitFor();
    await page.getByText('You are signed out.').waitFor();
    await shot('signed-out');
    // A reload starts from nothing: the session was only in memory.
    await page.reload();
    await heading('Sign in to Tessera').waitFor();
  } catch (e) {
    await page.screenshot({ path: join(SHOTS, `${tag}-failure.png`) }).catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
let failed = false;
try {
  for (const size of SIZES) await scenario(browser, size);
} catch (e) {
  failed = true;
  console.error(`console: FAILED: ${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close();
}
if (external.length > 0) {
  failed = true;
  console.error(`console: FAILED: the page tried to reach other hosts: ${external.join(', ')}`);
}
if (problems.length > 0) {
  failed = true;
  console.error(`console: FAILED: ${problems.join('; ')}`);
}
if (failed) process.exit(1);
console.log(`console: every scenario passed at ${SIZES.map((s) => `${s.width}x${s.height}`).join(' and ')}; no request left ${ORIGIN.host}; screenshots in ${SHOTS}`);
