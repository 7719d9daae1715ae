// Tessera's web console: one hand-written ES module, no framework, no build
// step, nothing loaded from another origin (the page's Content-Security-Policy
// forbids it anyway).
//
// It is a client of Tessera's public REST API (CONTRACT §5) and of nothing else.
//
// The session: POST /Login answers "QSDK <secret>", which is kept in the
// variable `session` below and nowhere else — not in web storage, not in a
// cookie — so it is gone when the tab is closed or reloaded, and it is sent
// in the `Authtoken` header the API expects.
//
// CSRF: because the credential travels in a header that this script sets
// itself, and never in a cookie that a browser would attach on its own, a
// page on another site cannot make a state-changing call (create, edit,
// revoke, user administration) on the user's behalf. No CSRF token is needed.

/** The API's root: the folder above /console/ (so a web-service root such as
 *  /commandcenter/api/console/ or a proxy's prefix works unchanged). */
const API_ROOT = new URL('../', document.baseURI);

const DAY = 86400;
const LEGACY_MESSAGE = 'This token was upgraded from an older format and cannot be edited.';

/** API field names → the id of the form control they concern. */
const FIELD_IDS = {
  tokenName: 'token-name',
  tokenType: 'scope',
  apiEndpoints: 'endpoints',
  renewableUntilTimestamp: 'renewable-until',
  tokenExpiryTimestamp: 'expiry-date',
  allowedIPs: 'ip-allowlist',
  rateLimit: 'rate-requests',
  'rateLimit.requests': 'rate-requests',
  'rateLimit.perSeconds': 'rate-seconds',
  username: 'signin-user-name',
  userName: 'user-name',
  password: 'password',
  role: 'role',
  kind: 'kind',
};

/** The signed-in user: { token, userName, userId, isAdmin }, or null. In
 *  memory only (see the header comment). */
let session = null;

/** The server's validity figures (GET V4/AccessToken/Policy, CONTRACT §2: each is
 *  server configuration), read once after sign-in: { renewableUntil:
 *  {defaultSeconds, maxSeconds}, tokenExpiry: {1: {…}, 4: {…}}, scopes: [{tokenType,
 *  name, refreshable, takesEndpoints, sameAs?}, …], … }, or null. The scopes
 *  drive the form (which scopes exist, which take endpoints, which renew);
 *  the figures fill in the default dates and show the limits; the server stays the
 *  authority: a value past its limit comes back as a 400 naming the field,
 *  shown beside it. */
let policy = null;
/** Why the policy could not be read (an ApiError), or null. */
let policyError = null;

// ---- the API -----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const message =
      (body && (body.errorMessage || (body.error && body.error.errorMessage))) ||
      (body && body.errList && body.errList[0] && body.errList[0].errLogMessage) ||
      `The server answered ${status}.`;
    super(message);
    this.status = status;
    this.field = body && typeof body.field === 'string' ? body.field.replace(/[[.].*$/, '') : null;
    /** The field as the server named it, with any inner part (rateLimit.requests). */
    this.path = body && typeof body.field === 'string' ? body.field : null;
  }
}

/** One call to the REST API. Throws ApiError for a non-2xx answer. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (session) headers.Authtoken = session.token;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(path, API_ROOT), init);
  } catch (e) {
    throw new ApiError(0, { errorMessage: 'The server cannot be reached.' });
  }
  let data = {};
  try {
    data = await response.json();
  } catch (e) {
    data = {};
  }
  if (!response.ok) {
    const err = new ApiError(response.status, data);
    if (response.status === 401 && session && path !== 'Login') {
      session = null;
      renderSignIn('Your session has ended. Sign in again.');
    }
    throw err;
  }
  return data;
}

// ---- small DOM helpers ---------------------------------------------------------

/** Creates an element: h('p', {class: 'x'}, 'text', child, …). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function announce(text) {
  const s = document.getElementById('status');
  s.textContent = '';
  setTimeout(() => { s.textContent = text; }, 50);
}

function pad(n) { return String(n).padStart(2, '0'); }

/** A Unix time as local YYYY-MM-DD. */
function dateOf(ts) {
  const d = new Date(ts * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** A Unix time as local YYYY-MM-DD HH:MM in a <time> element. */
function when(ts) {
  if (!ts) return 'Never';
  const d = new Date(ts * 1000);
  return h('time', { datetime: d.toISOString() }, `${dateOf(ts)} ${pad(d.getHours())}:${pad(d.getMinutes())}`);
}

/** A date field's value as a Unix time: that day at `base`'s time of day
 *  (so the last allowed day is exactly creation + the limit), never past
 *  `limit` on the limit's own day (a daylight-saving shift). */
function timestampOf(date, base, limit) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return null;
  const b = new Date(base * 1000);
  const ts = Math.floor(new Date(+m[1], +m[2] - 1, +m[3], b.getHours(), b.getMinutes(), b.getSeconds()).getTime() / 1000);
  return limit !== null && ts > limit && date === dateOf(limit) ? limit : ts;
}

function lines(text) {
  return text.split('\n').map((s) => s.trim()).filter((s) => s !== '');
}

/** A duration as the notes write it: "60 days", else "36 hours", else minutes or seconds. */
function span(seconds) {
  const units = [[DAY, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  const [size, unit] = units.find(([u]) => seconds % u === 0);
  const n = seconds / size;
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

// ---- scopes: the rules come from the server (GET V4/AccessToken/Policy's
// `scopes`), never a copy of them here ------------------------------------------

/** The server's entry for `tokenType` ({tokenType, name, refreshable,
 *  takesEndpoints, sameAs?}), or null when unknown or the policy is unread. */
function scopeOf(tokenType) {
  const scopes = (policy && policy.scopes) || [];
  return scopes.find((s) => s.tokenType === Number(tokenType)) || null;
}
/** The scope a type number stands for (an alias such as 2 names another). */
function kindOf(tokenType) {
  const s = scopeOf(tokenType);
  return s && s.sameAs != null ? s.sameAs : Number(tokenType);
}
/** Whether tokens of the scope get a refresh token and a renewal window. */
function refreshable(tokenType) { return Boolean((scopeOf(kindOf(tokenType)) || {}).refreshable); }
/** Whether the scope takes a list of API endpoints (Custom). */
function takesEndpoints(tokenType) { return Boolean((scopeOf(kindOf(tokenType)) || {}).takesEndpoints); }
/** The scope's name as the server gives it, else its number. */
function scopeLabel(tokenType) { return (scopeOf(tokenType) || {}).name || String(tokenType); }
/** The scopes a token can be created with, in the server's order. */
function creatableScopes() { return ((policy && policy.scopes) || []).filter((s) => s.sameAs == null); }
function now() { return Math.floor(Date.now() / 1000); }

/** Clears the errors shown in `form`. */
function clearErrors(form) {
  for (const p of form.querySelectorAll('.error')) p.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** An API message with its Unix times (10 digits) written as local dates. */
function readable(message) {
  return message.replace(/\b1\d{9}\b/g, (ts) => {
    const d = new Date(Number(ts) * 1000);
    return `${dateOf(Number(ts))} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  });
}

/** Shows an API error beside the field it names, or at the top of `form`. */
function showError(form, err) {
  clearErrors(form);
  const id = (err.path && FIELD_IDS[err.path]) || (err.field && FIELD_IDS[err.field]);
  const control = id && form.querySelector(`#${id}`);
  if (control && !control.closest('[hidden]')) {
    control.setAttribute('aria-invalid', 'true');
    form.querySelector(`#${id}-error`).textContent = readable(err.message);
    control.focus();
  } else {
    form.querySelector('.form-error').textContent = readable(err.message);
  }
}

/** A labelled form field with its error line (and, optionally, a note). */
function field(id, label, control, note) {
  control.id = id;
  const errorId = `${id}-error`;
  const described = [note ? `${id}-note` : null, errorId].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  return h('div', { class: 'field', 'data-for': id },
    h('label', { for: id }, label),
    h('div', { class: 'control' }, control, note ? h('span', { class: 'note', id: `${id}-note` }, note) : null),
    h('p', { class: 'error', id: errorId, role: 'alert' }));
}

/** Explicit table roles: the narrow layout's `display: block` would drop
 *  them for assistive technology otherwise. */
function tableRoles(table) {
  table.setAttribute('role', 'table');
  for (const el of table.querySelectorAll('thead, tbody')) el.setAttribute('role', 'rowgroup');
  for (const el of table.querySelectorAll('tr')) el.setAttribute('role', 'row');
  for (const el of table.querySelectorAll('thead th')) el.setAttribute('role', 'columnheader');
  for (const el of table.querySelectorAll('tbody th')) el.setAttribute('role', 'rowheader');
  for (const el of table.querySelectorAll('td')) el.setAttribute('role', 'cell');
  return table;
}

/** A modal dialog; `build(dialog)` fills it. Removed from the page on close. */
function modal(title, build) {
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const dialog = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, title));
  dialog.addEventListener('close', () => dialog.remove());
  build(dialog);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// ---- views ------------------------------------------------------------------------

function setView(...children) {
  const main = document.getElementById('main');
  main.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  const heading = main.querySelector('h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

function renderChrome(current) {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!session) {
    nav.hidden = true;
    who.hidden = true;
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  nav.replaceChildren(
    h('button', { type: 'button', class: 'link', 'aria-current': current === 'tokens' ? 'page' : null, onclick: () => renderTokens(null) }, 'Access tokens'),
    session.isAdmin ? h('button', { type: 'button', class: 'link', 'aria-current': current === 'users' ? 'page' : null, onclick: () => renderUsers() }, 'Users') : null,
    h('button', { type: 'button', class: 'link', 'aria-current': current === 'activity' ? 'page' : null, onclick: () => renderActivity(null) }, 'Activity'),
    h('button', { type: 'button', class: 'link', 'aria-current': current === 'account' ? 'page' : null, onclick: () => renderAccount() }, 'Account'),
  );
  who.replaceChildren(
    h('span', { class: 'user' }, session.userName),
    h('button', { type: 'button', onclick: signOut }, 'Sign out'),
  );
  nav.hidden = false;
  who.hidden = false;
}

function renderSignIn(message) {
  renderChrome();
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card signin', novalidate: true },
    h('h1', {}, 'Sign in to Tessera'),
    message ? h('p', { class: 'notice' }, message) : null,
    h('p', { class: 'form-error', role: 'alert' }),
    field('signin-user-name', 'User name', user),
    field('signin-password', 'Password', password),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const r = await api('POST', 'Login', { username: user.value.trim(), password: passwordB64(password.value) });
      session = { token: r.token, userName: r.userName, userId: r.userId, isAdmin: false };
      // Whether the user is an admin, as the server says.
      const me = await api('GET', 'WhoAmI');
      if (!session) return;
      session.isAdmin = me.isAdmin === true;
      await loadPolicy();
      if (!session) return;
      password.value = '';
      await renderTokens(null);
    } catch (err) {
      if (err.field === 'password') err.field = null;
      showError(form, err);
    } finally {
      button.disabled = false;
    }
  });
  setView(form);
  user.focus();
}

async function signOut() {
  try {
    await api('POST', 'Logout');
  } catch (e) {
    // The session may have ended already; either way it is forgotten.
  }
  session = null;
  policy = null;
  policyError = null;
  renderSignIn('You are signed out.');
}

/** Reads the server's validity figures into `policy` (or the reason it
 *  could not into `policyError`). */
async function loadPolicy() {
  policyError = null;
  try {
    policy = await api('GET', 'V4/AccessToken/Policy');
  } catch (err) {
    policy = null;
    policyError = err;
  }
}

/** The message shown when the policy could not be read. */
function policyProblem() {
  return `The scopes and validity policy could not be read (${policyError.message}): tokens cannot be added or edited until they can.`;
}

/** The token list of `owner` ({userId, userName, kind}), or of the caller
 *  when `owner` is null. */
async function renderTokens(owner) {
  const own = !owner || owner.userId === session.userId;
  renderChrome(own ? 'tokens' : 'users');
  const path = own ? 'V4/AccessToken' : `V4/AccessToken?userId=${encodeURIComponent(owner.userId)}`;
  // Anyone adds their own tokens; an admin (the only owner of service
  // accounts) adds a service account's, never another person's.
  const mayAdd = own || (owner.kind === 'service' && session.isAdmin);
  const title = own ? 'Access tokens' : `Access tokens of ${owner.userName}`;
  const errorLine = h('p', { class: 'form-error', role: 'alert' }, policyError ? policyProblem() : null);
  const body = h('div', { class: 'list' }, h('p', { class: 'muted' }, 'Loading…'));
  const reload = () => renderTokens(owner);
  setView(
    h('div', { class: 'view-head' },
      h('h1', {}, title),
      h('div', { class: 'head-actions' },
        !own ? h('button', { type: 'button', onclick: () => renderUsers() }, 'Back to users') : null,
        mayAdd ? h('button', { type: 'button', class: 'primary', onclick: () => tokenDialog(null, own ? null : owner, reload) }, 'Add token') : null)),
    errorLine,
    body);
  let tokens;
  try {
    tokens = (await api('GET', path)).tokens || [];
  } catch (err) {
    if (!session) return;
    body.replaceChildren();
    errorLine.textContent = err.message;
    return;
  }
  if (tokens.length === 0) {
    body.replaceChildren(h('p', { class: 'muted' }, own ? 'You have no access tokens yet.' : 'This user has no access tokens.'));
    return;
  }
  tokens.sort((a, b) => a.tokenId - b.tokenId);
  body.replaceChildren(tableRoles(h('table', { class: 'cards' },
    h('caption', { class: 'visually-hidden' }, title),
    h('thead', {}, h('tr', {},
      ['Name', 'Scope', 'Created', 'Expires / renewable until', 'Last used', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, tokens.map((t) => tokenRow(t, reload))))));
}

function tokenRow(t, reload) {
  const expiry = t.renewableUntilTimestamp
    ? h('span', {}, 'Renewable until ', when(t.renewableUntilTimestamp))
    : h('span', {}, 'Expires ', when(t.tokenExpiryTimestamp));
  const scope = h('span', {}, scopeLabel(t.tokenType));
  if (takesEndpoints(t.tokenType) && t.apiEndpoints && t.apiEndpoints.length) {
    scope.append(h('span', { class: 'endpoints' }, t.apiEndpoints.join(', ')));
  }
  return h('tr', {},
    h('th', { scope: 'row', 'data-label': 'Name' },
      h('span', { class: 'name' }, t.tokenName),
      t.isLegacy ? h('span', { class: 'badge', title: 'Imported from the older format; cannot be edited' }, 'Legacy') : null),
    h('td', { 'data-label': 'Scope' }, scope),
    h('td', { 'data-label': 'Created' }, when(t.createdTimestamp)),
    h('td', { 'data-label': 'Valid until' }, expiry),
    // One wrapper: the narrow layout makes each child of a cell a grid item.
    h('td', { 'data-label': 'Last used' }, h('div', {},
      when(t.lastUsedTimestamp),
      t.lastUsedIp ? h('span', { class: 'address' }, ' from ', t.lastUsedIp) : null,
      t.rateLimit ? h('span', { class: 'limit' }, 'Rate limit ', h('span', { class: 'figures' }, rateText(t.rateLimit))) : null)),
    h('td', { class: 'row-actions', 'data-label': 'Actions' },
      h('button', { type: 'button', onclick: () => tokenDialog(t, null, reload) }, 'Edit'),
      h('button', { type: 'button', onclick: () => renderActivity(t) }, 'Activity'),
      h('button', { type: 'button', class: 'danger', onclick: () => revokeDialog(t, reload) }, 'Revoke')));
}

/** A rate limit as the list shows it: "100 / 60 s". */
function rateText(r) { return `${r.requests} / ${r.perSeconds} s`; }

/** How an event's kind reads in the Activity view. */
const EVENT_LABELS = {
  'login.succeeded': 'Signed in',
  'login.failed': 'Sign-in refused',
  'login.locked': 'Sign-in locked',
  'session.ended': 'Signed out',
  'token.created': 'Token created',
  'token.edited': 'Token edited',
  'token.renewed': 'Token renewed',
  'token.revoked': 'Token revoked',
  'token.reuse_detected': 'Refresh token reused: token revoked',
  'token.new_address': 'Used from a new address',
  'user.created': 'User created',
  'user.deleted': 'User deleted',
  'user.password_changed': 'Password changed',
  'legacy.imported': 'Legacy tokens imported',
};

/** Who did an event, as the trail says. */
function actorOf(e) {
  if (e.actorUserId != null) return e.actorUserId === session.userId ? 'you' : `user ${e.actorUserId}`;
  if (e.actorTokenId != null) return `token ${e.actorTokenId}`;
  return '—';
}

/** The audit trail, newest first: the caller's (token null) or one
 *  token's; "Older" reads the next page. */
async function renderActivity(token) {
  renderChrome(token ? 'tokens' : 'activity');
  const title = token ? `Activity of ${token.tokenName}` : 'Activity';
  const query = token ? `tokenId=${encodeURIComponent(token.tokenId)}&` : '';
  const errorLine = h('p', { class: 'form-error', role: 'alert' });
  const tbody = h('tbody', {});
  const more = h('button', { type: 'button', hidden: true }, 'Older');
  const empty = h('p', { class: 'muted', hidden: true }, 'Nothing recorded yet.');
  const table = tableRoles(h('table', { class: 'cards' },
    h('caption', { class: 'visually-hidden' }, title),
    h('thead', {}, h('tr', {},
      ['Event', 'When', 'By', 'Address', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody));
  setView(
    h('div', { class: 'view-head' },
      h('h1', {}, title),
      h('div', { class: 'head-actions' },
        token ? h('button', { type: 'button', onclick: () => renderTokens(null) }, 'Back to tokens') : null)),
    errorLine, empty, h('div', { class: 'list' }, table), h('div', { class: 'actions' }, more));
  let cursor = null;
  const load = async () => {
    more.disabled = true;
    let page;
    try {
      page = await api('GET', `V4/AccessToken/Events?${query}limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    } catch (err) {
      if (!session) return;
      errorLine.textContent = err.message;
      return;
    } finally {
      more.disabled = false;
    }
    const events = page.events || [];
    for (const e of events) {
      tbody.append(h('tr', { class: e.outcome === 'failure' ? 'failure' : null },
        h('th', { scope: 'row', 'data-label': 'Event' }, EVENT_LABELS[e.event] || e.event),
        h('td', { 'data-label': 'When' }, when(e.timestamp)),
        h('td', { 'data-label': 'By' }, actorOf(e)),
        h('td', { 'data-label': 'Address' }, e.address || '—'),
        h('td', { 'data-label': 'Detail' }, e.detail || '')));
    }
    cursor = page.nextCursor || null;
    more.hidden = !cursor;
    empty.hidden = tbody.children.length > 0;
    table.hidden = tbody.children.length === 0;
  };
  more.addEventListener('click', load);
  await load();
}

/** The API's form of a password: base64 of its UTF-8 bytes. */
function passwordB64(text) {
  const bytes = new TextEncoder().encode(text);
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
}

/** The Account view: change one's own password. */
function renderAccount(message) {
  renderChrome('account');
  const current = h('input', { type: 'password', name: 'current', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', name: 'new', autocomplete: 'new-password', required: true });
  const again = h('input', { type: 'password', name: 'again', autocomplete: 'new-password', required: true });
  const form = h('form', { class: 'card', novalidate: true },
    h('h2', {}, 'Change your password'),
    h('p', { class: 'form-error', role: 'alert' }),
    field('account-current', 'Current password', current),
    field('account-new', 'New password', next),
    field('account-again', 'New password again', again, 'Your other sessions end; this one stays.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Change password')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    if (next.value === '' || next.value !== again.value) {
      showError(form, { message: next.value === '' ? 'Enter a new password.' : 'The new passwords differ.' });
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await api('POST', 'V4/User/Password', { oldPassword: passwordB64(current.value), newPassword: passwordB64(next.value) });
      renderAccount('Password changed. Your other sessions have ended.');
      announce('Password changed.');
    } catch (err) {
      if (err.field === 'oldPassword' || err.field === 'newPassword') err.field = null;
      showError(form, err);
    } finally {
      button.disabled = false;
    }
  });
  setView(
    h('div', { class: 'view-head' }, h('h1', {}, 'Account'), h('div', { class: 'head-actions' })),
    message ? h('p', { class: 'notice', role: 'status' }, message) : null,
    h('p', {}, `Signed in as ${session.userName}${session.isAdmin ? ' (admin)' : ''}.`),
    form);
}

/** The Add token (token null) or Edit token dialog. `owner`: the service
 *  account a new token is for, or null for the caller. */
async function tokenDialog(token, owner, reload) {
  // Read after sign-in; asked again only if that failed.
  if (!policy) await loadPolicy();
  if (!session) return;
  const ctx = {
    token,
    owner,
    reload,
    adding: !token,
    legacy: Boolean(token && token.isLegacy),
    // Dates are offered relative to the token's creation.
    base: token ? token.createdTimestamp : now(),
  };
  const title = ctx.adding ? (owner ? `Add token for ${owner.userName}` : 'Add token') : `Edit token ${token.tokenName}`;
  modal(title, (dialog) => {
    if (creatableScopes().length === 0) {
      dialog.append(noScopesForm(dialog));
      return;
    }
    const c = tokenControls(ctx);
    fillDates(ctx, c);
    const form = tokenForm(ctx, c, dialog);
    form.addEventListener('submit', (ev) => submitToken(ev, ctx, c, form, dialog));
    dialog.append(form);
    setTimeout(() => (ctx.legacy ? form.querySelector('button') : c.name).focus(), 0);
  });
}

/** The dialog's content when the server's scopes could not be read: the
 *  form cannot be offered without them. */
function noScopesForm(dialog) {
  const why = policyError ? ` (${policyError.message})` : '';
  return h('form', { novalidate: true },
    h('p', { class: 'form-error', role: 'alert' }, `The scopes and validity policy could not be read${why}: try again later.`),
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => dialog.close() }, 'Close')));
}

/** The token form's controls and fields, filled from the token when editing. */
function tokenControls({ token, adding }) {
  const c = {
    name: h('input', { type: 'text', maxlength: 255, autocomplete: 'off', value: adding ? '' : token.tokenName }),
    scope: h('select', {}, creatableScopes().map((s) => h('option', { value: String(s.tokenType) }, s.name))),
    endpoints: h('textarea', { rows: 4, spellcheck: 'false' }),
    renewable: h('input', { type: 'date' }),
    expiry: h('input', { type: 'date' }),
    ips: h('textarea', { rows: 3, spellcheck: 'false' }),
    // Text, not type=number: what was typed reaches the server as typed
    // (a number input would turn "abc" into an empty field, i.e. no limit).
    rateRequests: h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false' }),
    rateSeconds: h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false' }),
    renewableNote: h('span', {}),
    expiryNote: h('span', {}),
    initial: { renewable: '', expiry: '', rate: '' },
  };
  c.scope.value = adding ? String(creatableScopes()[0].tokenType) : String(kindOf(token.tokenType));
  c.endpoints.value = adding ? '' : (token.apiEndpoints || []).join('\n');
  c.ips.value = adding ? '' : (token.allowedIPs || []).join('\n');
  const limit = !adding && token.rateLimit;
  c.rateRequests.value = limit ? String(limit.requests) : '';
  c.rateSeconds.value = limit ? String(limit.perSeconds) : '';
  // As shown, so that an edit sends rateLimit only when it changed.
  c.initial.rate = rateValue(c);
  c.fEndpoints = field('endpoints', 'Endpoints', c.endpoints, 'One per line; a line may start with a method, as GET /Job.');
  c.fRenewable = field('renewable-until', 'Renewable until', c.renewable, c.renewableNote);
  c.fExpiry = field('expiry-date', 'Expiry date', c.expiry, c.expiryNote);
  return c;
}

/** The policy's default and latest date for a token of `type` created at
 *  `base` ({def, max, w}; all null without the server's figures). */
function dateLimits(base, type) {
  const w = policy && (refreshable(type) ? policy.renewableUntil : (policy.tokenExpiry || {})[type]);
  if (!w) return { def: null, max: null, w: null };
  return { def: base + w.defaultSeconds, max: base + w.maxSeconds, w };
}

/** Shows the fields the chosen scope uses, with the policy's limits beside
 *  the date; `resetDates` fills in the policy's default. */
function syncScope({ legacy, base }, c, resetDates) {
  const type = Number(c.scope.value);
  c.fEndpoints.hidden = !takesEndpoints(type);
  if (legacy) {
    // A legacy token has a fixed expiry and no renewal, whatever its scope.
    c.fRenewable.hidden = true;
    c.fExpiry.hidden = false;
    c.expiryNote.textContent = 'Fixed when the token was issued.';
    return;
  }
  c.fRenewable.hidden = !refreshable(type);
  c.fExpiry.hidden = refreshable(type);
  const { def, max, w } = dateLimits(base, type);
  const input = refreshable(type) ? c.renewable : c.expiry;
  const note = refreshable(type) ? c.renewableNote : c.expiryNote;
  input.min = dateOf(now());
  if (!w) {
    // Without the server's figures: no default filled in (an empty
    // field is not sent, so the server applies its own), no limit shown.
    input.removeAttribute('max');
    note.textContent = '';
    if (resetDates) input.value = '';
    return;
  }
  input.max = dateOf(max);
  note.textContent = `Default ${dateOf(def)} (creation + ${span(w.defaultSeconds)}); at most ${dateOf(max)} (creation + ${span(w.maxSeconds)}).`;
  if (resetDates) input.value = dateOf(def);
}

/** Fills the date fields (the policy's default, or the token's dates),
 *  remembers them so that only a changed date is sent, and follows the
 *  scope as it changes. */
function fillDates(ctx, c) {
  const { token, adding, legacy } = ctx;
  syncScope(ctx, c, adding);
  if (!adding) {
    if (token.renewableUntilTimestamp) c.renewable.value = dateOf(token.renewableUntilTimestamp);
    if (legacy || !refreshable(token.tokenType)) c.expiry.value = dateOf(token.tokenExpiryTimestamp);
  }
  c.initial.renewable = c.renewable.value;
  c.initial.expiry = c.expiry.value;
  c.scope.addEventListener('change', () => syncScope(ctx, c, adding || !c.renewable.value));
}

/** The form itself: read-only, with the legacy notice, for a legacy token. */
function tokenForm({ adding, legacy }, c, dialog) {
  const form = h('form', { novalidate: true, class: 'token-form' },
    legacy ? h('p', { class: 'notice legacy-message', role: 'note' }, LEGACY_MESSAGE) : null,
    h('p', { class: 'form-error', role: 'alert' }),
    field('token-name', 'Token name', c.name),
    field('scope', 'Scope', c.scope),
    c.fEndpoints, c.fRenewable, c.fExpiry,
    field('ip-allowlist', 'IP allowlist', c.ips, 'One address, CIDR or range (a-b) per line; empty allows any address.'),
    h('fieldset', { class: 'rate-limit' },
      h('legend', {}, 'Rate limit'),
      field('rate-requests', 'Requests', c.rateRequests, 'Checks allowed per window. Leave both empty for no limit.'),
      field('rate-seconds', 'Per seconds', c.rateSeconds, 'The window, in seconds.')),
    h('div', { class: 'actions' },
      legacy ? null : h('button', { type: 'submit', class: 'primary' }, adding ? 'Submit' : 'Save'),
      h('button', { type: 'button', onclick: () => dialog.close() }, legacy ? 'Close' : 'Cancel')));
  if (legacy) {
    for (const el of form.querySelectorAll('input, select, textarea')) {
      el.disabled = true;
      el.removeAttribute('placeholder');
    }
  }
  return form;
}

/** Puts the date the scope uses into `body`, when the user changed it. */
function putDate({ base }, c, type, body) {
  const [name, input, was] = refreshable(type)
    ? ['renewableUntilTimestamp', c.renewable, c.initial.renewable]
    : ['tokenExpiryTimestamp', c.expiry, c.initial.expiry];
  if (input.value === was) return;
  body[name] = timestampOf(input.value, base, dateLimits(base, type).max);
  if (body[name] === null) throw dateError(name);
}

/** The rate limit fields as typed (trimmed): "requests/perSeconds", or ""
 *  when both are empty (no limit). */
function rateValue(c) {
  const [r, s] = [c.rateRequests.value.trim(), c.rateSeconds.value.trim()];
  return r === '' && s === '' ? '' : `${r}/${s}`;
}

/** The body's `rateLimit`: null when both fields are empty, else the
 *  figures given (a whole number as a number; anything else as typed, for
 *  the server to refuse naming the figure; an empty one left out, which the
 *  server refuses as missing). */
function rateLimitOf(c) {
  if (rateValue(c) === '') return null;
  const figure = (v) => (/^\d{1,15}$/.test(v) ? Number(v) : v);
  const limit = {};
  const [r, s] = [c.rateRequests.value.trim(), c.rateSeconds.value.trim()];
  if (r !== '') limit.requests = figure(r);
  if (s !== '') limit.perSeconds = figure(s);
  return limit;
}

/** The create body: every field the form holds. */
function createBody(ctx, c) {
  const type = Number(c.scope.value);
  const body = { tokenName: c.name.value.trim(), tokenType: type };
  if (takesEndpoints(type)) body.apiEndpoints = lines(c.endpoints.value);
  const list = lines(c.ips.value);
  if (list.length) body.allowedIPs = list;
  const limit = rateLimitOf(c);
  if (limit) body.rateLimit = limit;
  putDate(ctx, c, type, body);
  if (ctx.owner) body.userId = ctx.owner.userId;
  return body;
}

/** The edit body: only what the user changed (empty when nothing did). */
function editBody(ctx, c) {
  const { token } = ctx;
  const type = Number(c.scope.value);
  const body = {};
  if (c.name.value.trim() !== token.tokenName) body.tokenName = c.name.value.trim();
  const typeChanged = type !== kindOf(token.tokenType);
  if (typeChanged) body.tokenType = type;
  const endpoints = lines(c.endpoints.value);
  if (takesEndpoints(type) && (typeChanged || endpoints.join('\n') !== (token.apiEndpoints || []).join('\n'))) {
    body.apiEndpoints = endpoints;
  }
  if (lines(c.ips.value).join('\n') !== (token.allowedIPs || []).join('\n')) body.allowedIPs = lines(c.ips.value);
  // null removes the limit; left out, it stays as it is.
  if (rateValue(c) !== c.initial.rate) body.rateLimit = rateLimitOf(c);
  putDate(ctx, c, type, body);
  return body;
}

/** Sends the form: a create shows the new secrets; an edit closes the dialog. */
async function submitToken(ev, ctx, c, form, dialog) {
  ev.preventDefault();
  if (ctx.legacy) return;
  clearErrors(form);
  const submit = form.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    if (ctx.adding) {
      const reply = await api('POST', 'V4/AccessToken', createBody(ctx, c));
      showSecrets(dialog, reply.tokenInfo);
      ctx.reload();
      return;
    }
    const body = editBody(ctx, c);
    if (Object.keys(body).length > 0) {
      await api('PUT', `V4/AccessToken/${ctx.token.tokenId}`, body);
      announce('Token saved.');
    }
    dialog.close();
    ctx.reload();
  } catch (err) {
    if (!session) {
      dialog.close();
      return;
    }
    showError(form, err);
  } finally {
    submit.disabled = false;
  }
}

function dateError(fieldName) {
  const e = new ApiError(400, { errorMessage: 'Enter a date as YYYY-MM-DD.', field: fieldName });
  return e;
}

/** After creation: each secret once, with a copy button. */
function showSecrets(dialog, info) {
  const secret = (id, label, value) => {
    const input = h('input', { type: 'text', readonly: true, value, spellcheck: 'false', autocomplete: 'off' });
    const done = h('span', { class: 'copied', 'aria-hidden': 'true' });
    return h('div', { class: 'field' },
      h('label', { for: id }, label),
      h('div', { class: 'secret' },
        Object.assign(input, { id }),
        h('button', {
          type: 'button',
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(value);
            } catch (e) {
              // No clipboard API (a plain-HTTP origin): copy the selection.
              input.select();
              document.execCommand('copy');
            }
            done.textContent = 'Copied';
            announce(`${label} copied to the clipboard.`);
          },
        }, 'Copy'),
        done));
  };
  dialog.querySelector('h2').textContent = `Token “${info.tokenName}” created`;
  dialog.querySelector('form').remove();
  const close = h('button', { type: 'button', class: 'primary', onclick: () => dialog.close() }, 'Done');
  dialog.append(
    h('p', { class: 'notice warning' }, 'Copy the tokens now: they cannot be shown again.'),
    secret('secret-access', 'Access token', info.accessToken),
    info.refreshToken ? secret('secret-refresh', 'Refresh token', info.refreshToken) : null,
    h('div', { class: 'actions' }, close));
  close.focus();
}

// A confirmation: `question`, a danger button `label` that runs `act` (an
// API call; its error shows in the dialog), and Cancel.
function confirmDialog(title, question, label, act) {
  modal(title, (dialog) => {
    const form = h('form', { novalidate: true },
      h('p', {}, question),
      h('p', { class: 'form-error', role: 'alert' }),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'danger' }, label),
        h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await act();
        dialog.close();
      } catch (err) {
        if (!session) { dialog.close(); return; }
        showError(form, err);
      }
    });
    dialog.append(form);
    setTimeout(() => form.querySelector('button[type=button]').focus(), 0);
  });
}

function revokeDialog(token, reload) {
  confirmDialog('Revoke token',
    `Revoke “${token.tokenName}”? Anything using it stops working at once. This cannot be undone.`,
    'Revoke',
    async () => {
      await api('DELETE', `V4/AccessToken/${token.tokenId}`);
      announce(`Token ${token.tokenName} revoked.`);
      reload();
    });
}

// ---- users (admins) -----------------------------------------------------------------

async function renderUsers() {
  renderChrome('users');
  const userName = h('input', { type: 'text', autocomplete: 'off' });
  const password = h('input', { type: 'password', autocomplete: 'new-password' });
  const role = h('select', {}, h('option', { value: 'user' }, 'User'), h('option', { value: 'admin' }, 'Admin'));
  const kind = h('select', {}, h('option', { value: 'person' }, 'Person'), h('option', { value: 'service' }, 'Service account'));
  const fPassword = field('password', 'Password', password);
  kind.addEventListener('change', () => { fPassword.hidden = kind.value === 'service'; });
  const form = h('form', { class: 'card user-form', novalidate: true },
    h('h2', {}, 'Create user'),
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'grid' },
      field('user-name', 'User name', userName),
      field('kind', 'Kind', kind),
      field('role', 'Role', role),
      fPassword),
    h('p', { class: 'muted' }, 'A service account has no password and cannot sign in; you become its owner and may add its tokens.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create user')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = { userName: userName.value.trim(), role: role.value, kind: kind.value };
    if (kind.value === 'person') {
      const bytes = new TextEncoder().encode(password.value);
      body.password = btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
    }
    try {
      await api('POST', 'V4/User', body);
      announce(`User ${body.userName} created.`);
      renderUsers();
    } catch (err) {
      if (session) showError(form, err);
    }
  });
  const errorLine = h('p', { class: 'form-error', role: 'alert' });
  const list = h('div', { class: 'list' }, h('p', { class: 'muted' }, 'Loading…'));
  setView(h('div', { class: 'view-head' }, h('h1', {}, 'Users')), errorLine, list, form);
  let users;
  try {
    users = (await api('GET', 'V4/User')).users || [];
  } catch (err) {
    if (!session) return;
    list.replaceChildren();
    errorLine.textContent = err.message;
    return;
  }
  const names = Object.fromEntries(users.map((u) => [u.userId, u.userName]));
  users.sort((a, b) => a.userId - b.userId);
  list.replaceChildren(tableRoles(h('table', { class: 'cards' },
    h('caption', { class: 'visually-hidden' }, 'Users'),
    h('thead', {}, h('tr', {}, ['User name', 'Role', 'Kind', 'Owner', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, users.map((u) => h('tr', {},
      h('th', { scope: 'row', 'data-label': 'User name' }, h('span', { class: 'name' }, u.userName)),
      h('td', { 'data-label': 'Role' }, u.role === 'admin' ? 'Admin' : 'User'),
      h('td', { 'data-label': 'Kind' }, u.kind === 'service' ? 'Service account' : 'Person'),
      h('td', { 'data-label': 'Owner' }, u.ownerId ? (names[u.ownerId] || `#${u.ownerId}`) : '—'),
      h('td', { class: 'row-actions', 'data-label': 'Actions' },
        h('button', { type: 'button', onclick: () => renderTokens(u) }, 'Access tokens'),
        u.userId === session.userId ? null
          : h('button', { type: 'button', class: 'danger', onclick: () => deleteUserDialog(u) }, 'Delete'))))))));
}

function deleteUserDialog(user) {
  confirmDialog('Delete user',
    `Delete “${user.userName}”? Every token of this user stops working at once.`,
    'Delete',
    async () => {
      await api('DELETE', `V4/User/${user.userId}`);
      announce(`User ${user.userName} deleted.`);
      renderUsers();
    });
}

renderSignIn();
