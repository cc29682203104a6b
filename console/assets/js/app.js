// The auditor console: a hash router over views that draw the auditor API's
// answers. Every figure on a page is an API value (or an exact BigInt sum of
// API values), so what a token may see is what the API lets it see.
import * as api from './api.js';
import { h, clear } from './dom.js';
import * as money from './money.js';
import { balanceChart } from './chart.js';
import { verifyCheckpoint } from './checkpoint.js';

const main = document.getElementById('main');
const TYPES = ['asset', 'liability', 'equity', 'revenue', 'expense'];
let generation = 0; // bumps on every navigation; a stale view stops drawing

function route() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/trial-balance';
  const [path, qs] = hash.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(qs || '') };
}

export function go(path, params) {
  const hash = '#' + path + api.query(params);
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function render() {
  const gen = ++generation;
  const { parts, params } = route();
  const signedIn = api.token() !== '';
  delete main.dataset.ready;
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('sign-out').hidden = !signedIn;
  const who = document.getElementById('who');
  const c = api.claims();
  who.textContent = signedIn && c ? `${c.sub || '?'} · ${c.scope ? 'scope ' + c.scope : 'all merchants'}` : '';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === parts[0]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clear(main);
  let name = 'sign-in';
  if (signedIn) name = VIEWS[parts[0]] ? parts[0] : 'not-found';
  const view = name === 'sign-in' ? signInView : (VIEWS[name] || notFoundView);
  const stale = () => gen !== generation;
  try {
    await view({ parts, params, stale });
  } catch (e) {
    if (stale()) return;
    showError(e);
    name = 'error';
  }
  if (stale()) return;
  main.dataset.ready = name;
  const h1 = main.querySelector('h1');
  if (h1 && document.activeElement === document.body) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
}

function showError(e) {
  const box = h('div', { class: 'alert bad', role: 'alert', id: 'error' },
    h('strong', null, e instanceof api.ApiError ? `${e.status} ${e.code}: ` : 'Error: '), e.message,
    e.detail ? h('div', null, e.detail) : null,
    e.requestID ? h('div', { class: 'muted' }, 'request id ' + e.requestID) : null);
  if (e instanceof api.ApiError && e.status === 401) {
    box.append(h('p', null, 'The token was not accepted (expired or signed out). ', h('a', { href: '#/sign-in', onclick: signOut }, 'Sign in again')));
  }
  main.append(box);
}

// ---- sign in / out ---------------------------------------------------------

async function signInView() {
  const ta = h('textarea', { id: 'token', rows: 5, cols: 60, autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
  const form = h('form', { id: 'sign-in-form', class: 'card' },
    h('h1', null, 'Sign in'),
    h('label', { for: 'token' }, 'Auditor token (JWT)'),
    ta,
    h('p', { id: 'token-help', class: 'muted' }, 'The token stays in this tab (sessionStorage) and is sent only in the Authorization header.'),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'sign-in' }, 'Sign in')));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    if (!ta.value.trim()) return;
    api.setToken(ta.value);
    go('/trial-balance');
  });
  main.append(form);
  const conf = await api.consoleConfig();
  if (conf.dev_sign_in) {
    const b = h('button', { type: 'button', id: 'dev-sign-in', class: 'secondary' }, 'Sign in with a dev token');
    b.addEventListener('click', async () => {
      try {
        api.setToken(await api.devToken());
        go('/trial-balance');
      } catch (e) {
        form.append(h('p', { class: 'alert bad', role: 'alert' }, 'No dev token: ' + e.message));
      }
    });
    form.append(h('div', { class: 'row dev' }, h('span', { class: 'muted' }, 'Dev server: '), b));
  }
}

function signOut(ev) {
  if (ev) ev.preventDefault();
  api.clearToken();
  go('/sign-in');
}

// ---- trial balance ---------------------------------------------------------

// accountPath is an account code in a path: escaped, but for the ':' of its
// kind (the API's router matches the raw path).
function accountPath(code) {
  return encodeURIComponent(code).replace(/%3A/gi, ':');
}

function accountLink(code, currency, scope) {
  // Statements exist for every account to an unscoped auditor, and only for
  // the merchant:ID accounts of its scope otherwise (docs/AUDIT.md).
  const visible = !scope || scope.some(m => code === 'merchant:' + m);
  if (!visible) return h('span', null, code);
  return h('a', { href: '#/account/' + accountPath(code) + api.query({ currency }) }, code);
}

// scrolling puts a wide table in a region that scrolls by itself (and by
// keyboard), so the page reflows at 200 % zoom and the table stays a table.
function scrolling(table, label) {
  return h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': label }, table);
}

function fig(key, value, extra) {
  return h('td', { class: 'num' + (extra ? ' ' + extra : ''), 'data-fig': key }, value);
}

async function trialBalanceView({ params, stale }) {
  const asOf = params.get('as_of') || '';
  const input = h('input', { id: 'as-of', type: 'text', value: asOf, size: 34, placeholder: 'head', 'aria-describedby': 'as-of-help', inputmode: 'text' });
  const form = h('form', { class: 'toolbar', id: 'as-of-form' },
    h('label', { for: 'as-of' }, 'As of'), input,
    h('button', { type: 'submit', id: 'as-of-show' }, 'Show'),
    h('button', { type: 'button', id: 'as-of-now', class: 'secondary', onclick: () => go('/trial-balance', { as_of: new Date().toISOString() }) }, 'Now'),
    h('span', { id: 'as-of-help', class: 'muted' }, 'RFC 3339 time (e.g. 2026-12-04T18:00:00Z) or an entry number; empty: the head'));
  form.addEventListener('submit', ev => { ev.preventDefault(); go('/trial-balance', { as_of: input.value.trim() }); });
  main.append(h('h1', null, 'Trial balance'), form);

  const q = /^\d+$/.test(asOf) ? { as_of_entry: asOf } : { as_of: asOf };
  const tb = await api.get('/v1/audit/trial-balance', q);
  if (stale()) return;
  const scope = tb.scope;
  main.append(h('p', { id: 'tb-as-of' }, 'Through entry ', h('strong', { 'data-fig': 'as_of_entry' }, String(tb.as_of_entry)),
    tb.as_of_time ? [' (', h('time', { 'data-fig': 'as_of_time' }, tb.as_of_time), ')'] : '',
    scope ? ` · scoped to ${scope.join(', ')}` : ' · all merchants',
    tb.checked_against_balances ? ' · checked against the stored balances' : ''));

  const currencies = [...new Set(tb.accounts.map(a => a.currency).concat(tb.totals.map(t => t.currency)))].sort();
  let allBalanced = true;
  for (const cur of currencies) {
    const accts = tb.accounts.filter(a => a.currency === cur);
    const total = tb.totals.find(t => t.currency === cur);
    const scale = money.scaleOf((total || accts[0]).debit);
    const table = h('table', { class: 'report', id: 'tb-' + cur },
      h('caption', null, cur),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Account'), h('th', { scope: 'col', class: 'num' }, 'Debit'),
        h('th', { scope: 'col', class: 'num' }, 'Credit'), h('th', { scope: 'col', class: 'num' }, 'Balance'))));
    for (const type of TYPES.concat([...new Set(accts.map(a => a.type))].filter(t => !TYPES.includes(t)))) {
      const rows = accts.filter(a => a.type === type);
      if (!rows.length) continue;
      const body = h('tbody', { 'data-type': type },
        h('tr', { class: 'group' }, h('th', { scope: 'rowgroup', colspan: 4 }, type)));
      for (const a of rows) {
        const k = `account:${a.account}:${cur}`;
        body.append(h('tr', null, h('th', { scope: 'row' }, accountLink(a.account, cur, scope)),
          fig(k + ':debit', a.debit), fig(k + ':credit', a.credit), fig(k + ':balance', a.balance)));
      }
      const k = `type:${type}:${cur}`;
      body.append(h('tr', { class: 'subtotal' }, h('th', { scope: 'row' }, 'Total ' + type),
        fig(k + ':debit', money.sum(rows.map(a => a.debit), scale)), fig(k + ':credit', money.sum(rows.map(a => a.credit), scale)), h('td')));
      table.append(body);
    }
    // The page recomputes the totals from the rows and compares them with the
    // API's: either disagreeing, or debits ≠ credits, is shown as unbalanced.
    const dr = money.sum(accts.map(a => a.debit), scale), cr = money.sum(accts.map(a => a.credit), scale);
    const ok = total && total.balanced && dr === total.debit && cr === total.credit && total.debit === total.credit &&
      total.debit_balances === total.credit_balances;
    allBalanced = allBalanced && ok;
    const tk = `total:${cur}`;
    const cls = ok ? 'ok' : 'bad';
    table.append(h('tfoot', null,
      h('tr', { class: 'total ' + cls }, h('th', { scope: 'row' }, 'Total debits / credits'),
        fig(tk + ':debit', total ? total.debit : '—'), fig(tk + ':credit', total ? total.credit : '—'), h('td')),
      h('tr', { class: 'total ' + cls }, h('th', { scope: 'row' }, 'Debit / credit balances'),
        fig(tk + ':debit_balances', total ? total.debit_balances : '—'), fig(tk + ':credit_balances', total ? total.credit_balances : '—'),
        h('td', { class: 'status' }, ok ? '✓ balances' : '✗ DOES NOT BALANCE'))));
    main.append(scrolling(table, 'Trial balance, ' + cur));
    if (!ok) {
      const why = [];
      if (!total) why.push('the API gave no total');
      else {
        if (dr !== total.debit) why.push(`the rows' debits add up to ${dr}, the total says ${total.debit}`);
        if (cr !== total.credit) why.push(`the rows' credits add up to ${cr}, the total says ${total.credit}`);
        if (total.debit !== total.credit) why.push(`debits ${total.debit} ≠ credits ${total.credit}`);
        if (total.debit_balances !== total.credit_balances) why.push(`debit balances ${total.debit_balances} ≠ credit balances ${total.credit_balances}`);
        if (!total.balanced) why.push('the API marks it unbalanced');
      }
      main.append(h('ul', { class: 'alert bad', id: 'tb-why-' + cur }, why.map(w => h('li', null, cur + ': ' + w))));
    }
  }
  if (!currencies.length) main.append(h('p', null, 'No entries yet.'));
  main.append(h('p', { id: 'tb-status', class: allBalanced ? 'alert ok' : 'alert bad', role: 'status' },
    allBalanced ? 'Debits equal credits in every currency.' : 'The trial balance does NOT balance.'));
}

// ---- account statement -----------------------------------------------------

async function statementView({ parts, params, stale }) {
  const account = parts[1];
  const currency = params.get('currency') || 'CNY';
  const limit = params.get('limit') || '25';
  const from = params.get('from') || '', to = params.get('to') || '';
  const cursors = (params.get('pages') || '').split(',').filter(Boolean); // cursors of the pages before this one
  const cursor = params.get('cursor') || '';
  const base = { currency, limit, from, to };

  const fromIn = h('input', { id: 'st-from', type: 'text', value: from, size: 28, placeholder: 'beginning' });
  const toIn = h('input', { id: 'st-to', type: 'text', value: to, size: 28, placeholder: 'now' });
  const sizeSel = h('select', { id: 'st-limit' }, ['10', '25', '100', '1000'].concat(['10', '25', '100', '1000'].includes(limit) ? [] : [limit])
    .map(v => h('option', { value: v, selected: v === limit }, v)));
  const form = h('form', { class: 'toolbar', id: 'st-form' },
    h('label', { for: 'st-from' }, 'From'), fromIn, h('label', { for: 'st-to' }, 'to'), toIn,
    h("label", { for: "st-limit" }, "rows per page"), sizeSel, h("button", { type: "submit", id: "st-show" }, "Show"));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    go('/account/' + accountPath(account), { currency, limit: sizeSel.value, from: fromIn.value.trim(), to: toIn.value.trim() });
  });
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/trial-balance' }, 'Trial balance'), ' › statement'),
    h('h1', null, 'Statement of ', h('code', null, account), ' (' + currency + ')'), form);

  const st = await api.get('/v1/audit/accounts/' + accountPath(account) + '/statement', { ...base, cursor });
  if (stale()) return;
  main.append(h('dl', { class: 'facts', id: 'st-facts' },
    h('dt', null, 'Type'), h('dd', null, st.type),
    h('dt', null, 'Entries'), h('dd', null, `${st.from_entry} … ${st.to_entry}`),
    h('dt', null, 'Opening balance'), h('dd', { 'data-fig': 'opening' }, st.opening_balance),
    h('dt', null, 'Closing balance'), h('dd', { 'data-fig': 'closing' }, st.closing_balance)));

  const chartBox = h('figure', { id: 'st-chart', class: 'chart-box' }, h('figcaption', null, 'Balance over the period (loading…)'));
  main.append(chartBox);

  const table = h('table', { class: 'report', id: 'st-lines' },
    h('caption', null, `Postings, page ${cursors.length + 1}`),
    h('thead', null, h('tr', null, ...['Entry', 'Time', 'Kind', 'Merchant', 'Order', 'Debit', 'Credit', 'Balance']
      .map((t, i) => h('th', { scope: 'col', class: i >= 5 ? 'num' : null }, t)))));
  const tbody = h('tbody');
  for (const l of st.lines) {
    tbody.append(h('tr', { 'data-entry': l.entry_id, 'data-seq': l.seq },
      h('td', null, h('a', { href: '#/entry/' + l.entry_id }, String(l.entry_id))), h('td', null, h('time', null, l.created_at)),
      h('td', null, l.kind), h('td', null, l.merchant), h('td', null, l.order_id),
      h('td', { class: 'num', 'data-col': 'debit' }, l.debit), h('td', { class: 'num', 'data-col': 'credit' }, l.credit),
      h('td', { class: 'num', 'data-col': 'balance' }, l.balance)));
  }
  if (!st.lines.length) tbody.append(h('tr', null, h('td', { colspan: 8 }, 'No postings in the period.')));
  table.append(tbody);
  main.append(scrolling(table, 'Postings'));

  const nav = h('div', { class: 'row pager' });
  if (cursors.length) {
    const prev = cursors.slice(0, -1);
    nav.append(h('button', { type: 'button', id: 'st-prev', onclick: () => go('/account/' + accountPath(account), { ...base, cursor: cursors[cursors.length - 1] === '-' ? '' : cursors[cursors.length - 1], pages: prev.join(',') }) }, '← Previous page'));
  }
  if (st.next_cursor) {
    nav.append(h('button', { type: 'button', id: 'st-next', onclick: () => go('/account/' + accountPath(account), { ...base, cursor: st.next_cursor, pages: cursors.concat([cursor || '-']).join(',') }) }, 'Next page →'));
  } else {
    nav.append(h('span', { class: 'muted', id: 'st-end' }, 'Last page.'));
  }
  main.append(nav);

  // The chart covers the whole period: its own pages of up to 1000 lines
  // (at most 20,000 points).
  const points = [];
  let opening = st.opening_balance, c = '';
  for (let i = 0; i < 20; i++) {
    const page = await api.get('/v1/audit/accounts/' + accountPath(account) + '/statement', { currency, from, to, limit: 1000, cursor: c });
    if (stale()) return;
    if (i === 0) opening = page.opening_balance;
    for (const l of page.lines) points.push({ t: Date.parse(l.created_at), balance: l.balance });
    if (!page.next_cursor) break;
    c = page.next_cursor;
  }
  clear(chartBox);
  chartBox.append(balanceChart({ opening, points, currency, minor: money.minor, title: `Balance of ${account}, ${points.length} postings, from ${opening} to ${points.length ? points[points.length - 1].balance : opening} ${currency}` }),
    h('figcaption', null, `Balance over the period: ${points.length} postings, opening ${opening}, closing ${st.closing_balance} ${currency}`));
  chartBox.dataset.points = String(points.length);
}

// ---- entry -----------------------------------------------------------------

function b64Text(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

function pretty(body) {
  try { return JSON.stringify(JSON.parse(body), null, 2); } catch { return body; }
}

function check(ok, name, detail) {
  return h('li', { class: ok ? 'ok' : 'bad', 'data-check': name }, h('strong', null, (ok ? '✓ ' : '✗ ') + name), detail ? [' — ', detail] : '');
}

async function entryView({ parts, stale }) {
  const id = parts[1];
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/trial-balance' }, 'Trial balance'), ' › entry'), h('h1', null, 'Entry ' + id));
  const [e, v] = await Promise.all([api.get('/v1/audit/entries/' + encodeURIComponent(id)), api.get('/v1/audit/entries/' + encodeURIComponent(id) + '/verification')]);
  if (stale()) return;
  const ver = h('section', { id: 'verification', class: 'card ' + (v.ok ? 'verified' : 'failed'), 'aria-labelledby': 'ver-h' },
    h('h2', { id: 'ver-h' }, v.ok ? '✓ Verified: hash, fingerprint and signature' : '✗ Verification FAILED'),
    h('ul', { class: 'checks' },
      check(v.fingerprint.ok, 'fingerprint', v.fingerprint.ok ? 'the content matches its fingerprint' : `stored ${v.fingerprint.stored}, recomputed ${v.fingerprint.recomputed}`),
      check(v.hash.ok, 'chain hash', v.hash.ok ? 'the entry and its evidence hash to its chain hash' : `stored ${v.hash.stored}, recomputed ${v.hash.recomputed}`),
      check(v.signature.ok, 'signature', v.signature.ok
        ? `${v.signature.scheme} by key ${v.signature.key_id} (${v.signature.key_status}), signed ${v.signature.signed_at}, ${v.signature.signed_before_recorded} before it was recorded`
        : v.signature.reason)),
    v.failures.length ? h('ul', { class: 'failures', id: 'failures' }, v.failures.map(f => h('li', null, f))) : null);
  main.append(ver);

  main.append(h('dl', { class: 'facts', id: 'entry-facts' },
    ...[['Kind', e.kind], ['Merchant', e.merchant], ['Order', e.order_id], ['Payer', e.payer || '—'],
      ['Amount', `${e.amount} ${e.currency}`], ['Fee', `${e.fee} ${e.currency}`], ['Description', e.description || '—'],
      ['Created', e.created_at]].flatMap(([k, val]) => [h('dt', null, k), h('dd', null, val)])));

  main.append(scrolling(h('table', { class: 'report', id: 'postings' }, h('caption', null, 'Postings (positive: debit)'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Account'), h('th', { scope: 'col' }, 'Currency'), h('th', { scope: 'col', class: 'num' }, 'Amount'))),
    h('tbody', null, e.postings.map(p => h('tr', null, h('td', null, p.account), h('td', null, p.currency), h('td', { class: 'num' }, p.amount))))), 'Postings'));

  const ev = e.evidence;
  main.append(h('section', { class: 'card', id: 'evidence', 'aria-labelledby': 'ev-h' },
    h('h2', { id: 'ev-h' }, 'The signed request'),
    h('dl', { class: 'facts' },
      h('dt', null, 'Scheme'), h('dd', { id: 'ev-scheme' }, ev.scheme),
      h('dt', null, 'Key id'), h('dd', { id: 'ev-key' }, h('code', null, ev.key_id)),
      h('dt', null, 'Request'), h('dd', null, h('code', null, `${ev.method} ${ev.target}`)),
      h('dt', null, 'Body'), h('dd', null, `${v.request.body_bytes} bytes, SHA-256 ${v.request.body_sha256}`)),
    h('h3', null, 'Signature header'), h('pre', { class: 'wrap', id: 'ev-auth', tabindex: 0 }, ev.authorization),
    h('h3', null, 'Body'), h('pre', { id: 'ev-body', tabindex: 0 }, pretty(b64Text(ev.body_base64)))));

  main.append(h('section', { class: 'card', 'aria-labelledby': 'chain-h' }, h('h2', { id: 'chain-h' }, 'Chain links'),
    h('dl', { class: 'facts mono' },
      h('dt', null, 'Previous hash'), h('dd', null, e.prev_hash), h('dt', null, 'Hash'), h('dd', null, e.hash),
      h('dt', null, 'Fingerprint'), h('dd', null, e.fingerprint)),
    h('div', { class: 'row' }, e.id > 1 ? h('a', { href: '#/entry/' + (e.id - 1) }, '← entry ' + (e.id - 1)) : null,
      h('a', { href: '#/entry/' + (e.id + 1) }, 'entry ' + (e.id + 1) + ' →'))));
}

// ---- chain -----------------------------------------------------------------

async function chainView({ stale }) {
  main.append(h('h1', null, 'Hash chain and checkpoints'));
  const fromIn = h('input', { id: 'cv-from', type: 'number', min: 1, value: 1, size: 10 });
  const toIn = h('input', { id: 'cv-to', type: 'number', min: 1, size: 10, placeholder: 'head' });
  const progress = h('progress', { id: 'cv-progress', max: 1, value: 0, 'aria-label': 'verification progress' });
  const out = h('div', { id: 'cv-result', role: 'status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', id: 'cv-run' }, 'Verify range');
  const form = h('form', { class: 'toolbar card', id: 'cv-form' }, h('h2', null, 'Verify a range'),
    h('label', { for: 'cv-from' }, 'From entry'), fromIn, h('label', { for: 'cv-to' }, 'to'), toIn, btn, progress, out);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    btn.disabled = true;
    try {
      await verifyRange(Number(fromIn.value) || 1, Number(toIn.value) || 0, progress, out, stale);
    } catch (e) {
      clear(out);
      out.append(h('p', { class: 'alert bad' }, e.message));
    } finally {
      btn.disabled = false;
    }
  });
  main.append(form);

  const [keys, cps] = await Promise.all([api.get('/v1/audit/platform-keys'), latestCheckpoints(20)]);
  if (stale()) return;
  const table = h('table', { class: 'report', id: 'checkpoints' },
    h('caption', null, `Latest checkpoints (${cps.length}), signatures checked in this page with the published platform keys`),
    h('thead', null, h('tr', null, ...['#', 'Entry', 'Head hash', 'Signed at', 'Key', 'Signature'].map(t => h('th', { scope: 'col' }, t)))));
  const tbody = h('tbody');
  for (const cp of cps.slice().reverse()) {
    const r = await verifyCheckpoint(cp, keys.keys);
    if (stale()) return;
    tbody.append(h('tr', { class: r.ok ? 'ok' : 'bad', 'data-checkpoint': cp.id },
      h('td', null, String(cp.id)), h('td', null, h('a', { href: '#/entry/' + cp.seq }, String(cp.seq))),
      h('td', { class: 'mono' }, cp.head_hash.slice(0, 16) + '…'), h('td', null, cp.created_at), h('td', null, h('code', null, cp.key_id)),
      h('td', { 'data-col': 'sig' }, r.ok ? '✓ valid (' + cp.algorithm + ')' : '✗ ' + r.reason)));
  }
  if (!cps.length) tbody.append(h('tr', null, h('td', { colspan: 6 }, 'No checkpoints yet.')));
  table.append(tbody);
  main.append(scrolling(table, 'Checkpoints'));
}

async function latestCheckpoints(n) {
  let after = 0, all = [];
  for (;;) {
    const page = await api.get('/v1/audit/checkpoints', { after, limit: 1000 });
    all = all.concat(page.checkpoints).slice(-n);
    if (!page.next_after) return all;
    after = page.next_after;
  }
}

const CHUNK = 2000;

// verifyRange asks the server to recompute the chain chunk by chunk, so the
// page can show progress, and stops at the first bad entry.
async function verifyRange(from, to, progress, out, stale) {
  clear(out);
  const probe = await api.get('/v1/audit/chain/verify', { from: 1, to: 1 });
  const last = to || probe.head;
  if (last < from) throw new Error(`nothing to verify: the range ${from}…${last} is empty`);
  progress.max = last - from + 1;
  progress.value = 0;
  let checked = 0, checkpoints = 0;
  for (let a = from; a <= last; a += CHUNK) {
    const b = Math.min(last, a + CHUNK - 1);
    const r = await api.get('/v1/audit/chain/verify', { from: a, to: b });
    if (stale()) return;
    checked += r.entries_checked;
    checkpoints += r.checkpoints_checked;
    progress.value = b - from + 1;
    out.textContent = `verified ${from}…${b} of ${from}…${last}`;
    if (!r.ok) {
      clear(out);
      out.append(h('div', { class: 'alert bad', id: 'cv-bad' },
        r.first_bad_entry ? [h('strong', null, 'First bad entry: '), h('a', { href: '#/entry/' + r.first_bad_entry, id: 'cv-first-bad' }, String(r.first_bad_entry)), ' — ', r.reason] : null,
        r.bad_checkpoint ? h('div', null, `Bad checkpoint ${r.bad_checkpoint}: ${r.checkpoint_reason}`) : null));
      return;
    }
  }
  clear(out);
  out.append(h('p', { class: 'alert ok', id: 'cv-ok' }, `Chain OK: entries ${from}…${last} recomputed (${checked}), ${checkpoints} checkpoints checked.`));
}

// ---- export ----------------------------------------------------------------

async function exportView() {
  main.append(h('h1', null, 'Export the journal'));
  const fmt = h('select', { id: 'ex-format' }, h('option', { value: 'csv' }, 'CSV'), h('option', { value: 'ndjson' }, 'NDJSON'));
  const fromIn = h('input', { id: 'ex-from', type: 'text', size: 28, placeholder: 'beginning' });
  const toIn = h('input', { id: 'ex-to', type: 'text', size: 28, placeholder: 'now' });
  const status = h('div', { id: 'ex-status', role: 'status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', id: 'ex-run' }, 'Download');
  const form = h('form', { class: 'card', id: 'ex-form' },
    h('div', { class: 'toolbar' }, h('label', { for: 'ex-format' }, 'Format'), fmt,
      h('label', { for: 'ex-from' }, 'From'), fromIn, h('label', { for: 'ex-to' }, 'to'), toIn, btn),
    h('p', { class: 'muted' }, 'Period [from, to): RFC 3339 times, or entry numbers for both. One row per posting; only your merchants\u2019 entries if your token is scoped.'),
    status);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    btn.disabled = true;
    try {
      await download(fmt.value, fromIn.value.trim(), toIn.value.trim(), status);
    } catch (e) {
      clear(status);
      status.append(h('p', { class: 'alert bad' }, e.message));
    } finally {
      btn.disabled = false;
    }
  });
  main.append(form);
}

// download fetches the export with the token in the header (a plain link
// could not carry it), counts its rows against Quill-Export-Rows and saves
// it through a Blob URL.
async function download(format, from, to, status) {
  const byEntry = /^\d+$/.test(from) || /^\d+$/.test(to);
  const q = byEntry ? { format, from_entry: from, to_entry: to } : { format, from, to };
  const res = await api.raw('/v1/audit/journal' + api.query(q));
  const want = Number(res.headers.get('Quill-Export-Rows'));
  const reader = res.body.getReader();
  const chunks = [];
  let bytes = 0, newlines = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    bytes += value.length;
    for (const b of value) if (b === 10) newlines++;
    status.textContent = `${bytes} bytes, ${format === 'csv' ? Math.max(0, newlines - 1) : newlines} of ${want} rows…`;
  }
  const rows = format === 'csv' ? newlines - 1 : newlines;
  if (rows !== want) throw new Error(`export cut short: ${rows} of ${want} rows arrived; try again`);
  const blob = new Blob(chunks, { type: format === 'csv' ? 'text/csv' : 'application/x-ndjson' });
  const url = URL.createObjectURL(blob);
  const name = `quill-journal-${(from || 'start').replace(/[^0-9A-Za-z]/g, '')}-${(to || 'now').replace(/[^0-9A-Za-z]/g, '')}.${format}`;
  const a = h('a', { href: url, download: name, id: 'ex-link' }, 'Save ' + name + ' again');
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  clear(status);
  status.append(h('p', { class: 'alert ok', id: 'ex-done' }, `Downloaded ${name}: ${rows} rows, ${bytes} bytes.`));
}

async function notFoundView() {
  main.append(h('h1', null, 'No such view'), h('p', null, h('a', { href: '#/trial-balance' }, 'Trial balance')));
}

const VIEWS = {
  'trial-balance': trialBalanceView,
  'account': statementView,
  'entry': entryView,
  'chain': chainView,
  'export': exportView,
  'sign-in': () => { go('/trial-balance'); },
};

document.getElementById('sign-out').addEventListener('click', signOut);
document.getElementById('skip').addEventListener('click', ev => { ev.preventDefault(); main.focus(); });
window.addEventListener('hashchange', render);
render();
