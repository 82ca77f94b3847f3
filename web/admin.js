// boxoffice operator page (/admin): the live figures of a concert's waiting line and its controls
// (max active, admission rate, pause / resume, close / reopen) and the audit log of operator actions.
// Plain browser JavaScript, no build step. Talks to /api/v1/admin/… with the admin secret, which is
// kept in this tab's sessionStorage only.
'use strict';

(() => {
  const API = '/api/v1';
  const SECRET_KEY = 'boxoffice.admin.secret';
  const CONCERT_KEY = 'boxoffice.admin.concert';
  const REFRESH_MS = 1000;
  const AUDIT_LIMIT = 20;

  const el = (id) => document.querySelector(`[data-testid="${id}"]`);

  const S = {
    secret: null,
    concerts: [],
    concertId: null,
    line: null,
    gen: 0, // bumps on sign-in / sign-out / another concert; stale answers check it
    timer: null,
    loop: 0, // one refresh loop at a time: a newer loop makes an older one's answers stale
    busy: false,
    refreshFailed: false,
  };

  // ---------------------------------------------------------------- helpers

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || (status === 0 ? 'NETWORK' : 'HTTP_' + status);
      this.detail = body && body.detail;
    }
  }

  async function api(method, path, { body, auth = true } = {}) {
    const h = { accept: 'application/json' };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (auth && S.secret) h.authorization = 'Bearer ' + S.secret;
    let res;
    try {
      res = await fetch(API + path, {
        method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
      });
    } catch (_) {
      throw new ApiError(0, { code: 'NETWORK', detail: 'Could not reach the server. Check the connection and try again.' });
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // An API error in plain words.
  function errorText(e) {
    if (e.status === 401) return 'The admin secret was refused.';
    if (e.status === 0) return e.detail;
    if (e.status === 422 && e.detail) return `The server did not accept that value: ${e.detail}.`;
    if (e.status >= 500) return `The server had a problem (${e.status}${e.detail ? `: ${e.detail}` : ''}). Try again.`;
    return e.detail ? `${e.detail} (${e.status}).` : `The server answered ${e.status}.`;
  }

  const nf = new Intl.NumberFormat('en-US');
  const rateNf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });
  const measuredNf = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  function fmtDuration(sec) {
    if (sec == null) return 'not known';
    if (sec < 60) return `${Math.round(sec)} s`;
    const m = Math.floor(sec / 60);
    if (m < 60) return `${m} min ${Math.round(sec % 60)} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  const two = (n) => String(n).padStart(2, '0');
  function fmtTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }
  function fmtDateTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${fmtTime(iso)}`;
  }

  function setText(id, text) {
    const n = el(id);
    if (n && n.textContent !== text) n.textContent = text;
  }

  function showBox(id, text) {
    const n = el(id);
    const t = n.querySelector('.banner-text') || n;
    t.textContent = text || '';
    n.hidden = !text;
  }

  function concertName(id) {
    const c = S.concerts.find((x) => x.concertId === id);
    return c ? c.title : `Concert #${id}`;
  }

  // ---------------------------------------------------------------- sign in / out

  function showLogin(message) {
    stopRefresh();
    S.gen++;
    S.secret = null;
    S.line = null;
    try { sessionStorage.removeItem(SECRET_KEY); } catch (_) { /* private mode */ }
    el('view-console').hidden = true;
    el('view-login').hidden = false;
    el('logout-btn').hidden = true;
    const input = el('admin-secret');
    if (message) {
      showBox('login-error', message);
      input.setAttribute('aria-invalid', 'true');
    } else {
      showBox('login-error', '');
      input.removeAttribute('aria-invalid');
    }
    input.value = '';
    input.focus();
    document.title = 'Sign in — boxoffice operator';
  }

  async function signIn(secret, { quiet = false } = {}) {
    const button = el('login-btn');
    button.disabled = true;
    S.secret = secret;
    try {
      // The audit log needs the secret and no concert: a good check of the secret by itself.
      await api('GET', '/admin/audit?limit=1');
      const data = await api('GET', '/concerts', { auth: false });
      S.concerts = data.concerts || [];
    } catch (e) {
      S.secret = null;
      if (e.status === 401) {
        showLogin(quiet
          ? 'The admin secret was refused: it may have changed on the server. Sign in again.'
          : 'The admin secret was refused. Check it and try again.');
      } else {
        showLogin(`Could not sign in: ${errorText(e)}`);
        if (quiet) el('admin-secret').value = secret;
      }
      return;
    } finally {
      button.disabled = false;
    }
    try { sessionStorage.setItem(SECRET_KEY, secret); } catch (_) { /* private mode: this page only */ }
    showConsole();
  }

  function showConsole() {
    el('view-login').hidden = true;
    el('view-console').hidden = false;
    el('logout-btn').hidden = false;
    showBox('login-error', '');
    el('admin-secret').value = '';
    const select = el('concert-select');
    select.textContent = '';
    for (const c of S.concerts) {
      const o = document.createElement('option');
      o.value = String(c.concertId);
      o.textContent = `${c.title} · ${c.venue}`;
      select.appendChild(o);
    }
    let saved = null;
    try { saved = Number(sessionStorage.getItem(CONCERT_KEY)); } catch (_) { /* ignore */ }
    const pick = S.concerts.find((c) => c.concertId === saved) || S.concerts[0];
    if (!pick) {
      S.concertId = null;
      setText('line-state', 'There are no concerts on this server.');
      el('line-state').dataset.state = '';
      setControlsEnabled(false);
      startRefresh();
      document.getElementById('h-console').focus();
      return;
    }
    select.value = String(pick.concertId);
    chooseConcert(pick.concertId);
    document.getElementById('h-console').focus();
  }

  function chooseConcert(id) {
    S.concertId = id;
    S.line = null;
    S.gen++;
    try { sessionStorage.setItem(CONCERT_KEY, String(id)); } catch (_) { /* ignore */ }
    for (const n of [el('max-active-input'), el('rate-input')]) { n.value = ''; delete n.dataset.dirty; }
    setText('control-msg', '');
    showBox('control-error', '');
    setText('line-state', 'Loading…');
    el('line-state').dataset.state = '';
    for (const id2 of ['fig-waiting', 'fig-active', 'fig-rate', 'fig-admitted', 'fig-eta', 'fig-seats-left', 'fig-seats-free']) setText(id2, '–');
    setText('fig-note', '');
    setControlsEnabled(false);
    document.title = `${concertName(id)} — boxoffice operator`;
    startRefresh();
  }

  // ---------------------------------------------------------------- live figures (every second)

  function stopRefresh() {
    clearTimeout(S.timer);
    S.timer = null;
  }

  function startRefresh() {
    stopRefresh();
    refresh(S.gen, ++S.loop);
  }

  async function refresh(gen, loop) {
    const stale = () => gen !== S.gen || loop !== S.loop;
    if (stale() || !S.secret) return;
    const id = S.concertId;
    try {
      const [line, audit] = await Promise.all([
        id == null ? Promise.resolve(null) : api('GET', `/admin/concerts/${id}/line`),
        api('GET', `/admin/audit?limit=${AUDIT_LIMIT}`),
      ]);
      if (stale()) return;
      if (line) renderLine(line);
      renderAudit(audit.entries || []);
      if (S.refreshFailed) { S.refreshFailed = false; showBox('admin-error', ''); }
      setText('figures-updated', `Updated ${fmtTime(new Date().toISOString())}`);
    } catch (e) {
      if (stale()) return;
      if (e.status === 401) {
        showLogin('The admin secret was refused: it may have changed on the server. Sign in again.');
        return;
      }
      S.refreshFailed = true;
      showBox('admin-error', `Couldn't refresh the figures: ${errorText(e)} Retrying…`);
    }
    if (!stale()) S.timer = setTimeout(() => refresh(gen, loop), REFRESH_MS);
  }

  // The state of the line in plain words, and a short name for tests and styles.
  function lineState(l) {
    if (l.closed === 'SOLD_OUT') {
      return ['sold-out', 'Sold out — every seat is sold, so the line closed by itself. Nobody can join.'];
    }
    if (l.closed === 'LINE_CLOSED' || (l.closed && l.settings && l.settings.closed)) {
      return ['closed', 'Closed by an operator — nobody can join, and the people who were waiting were told the line is closed.'];
    }
    if (l.closed) return ['closed', `Closed (${l.closed}) — nobody can join.`];
    if (l.paused === 'OPERATOR') {
      return ['paused', 'Paused by an operator — nobody is let in; the people waiting keep their places.'];
    }
    if (l.paused === 'NO_SEATS') {
      return ['paused-no-seats', 'Paused by itself — every seat left is on hold; admission carries on when holds run out or are released.'];
    }
    if (l.paused) return ['paused', `Paused (${l.paused}) — nobody is let in.`];
    return ['open', 'Open — people are let in as places free up.'];
  }

  function renderLine(l) {
    S.line = l;
    const st = l.settings || {};
    const [state, words] = lineState(l);
    const stateEl = el('line-state');
    stateEl.dataset.state = state;
    setText('line-state', words);
    setText('fig-waiting', nf.format(l.waiting));
    setText('fig-active', `${nf.format(l.active)} / ${nf.format(l.maxActive)}`);
    setText('fig-rate', `${rateNf.format(l.admissionRate)} per second`);
    setText('fig-admitted', `${measuredNf.format(l.admittedPerSecond || 0)} per second`);
    setText('fig-eta', l.waiting ? fmtDuration(l.etaLastSeconds) : 'nobody is waiting');
    setText('fig-seats-left', l.seatsLeft == null ? 'not known' : nf.format(l.seatsLeft));
    setText('fig-seats-free', l.seatsFree == null ? 'not known' : nf.format(l.seatsFree));
    const notes = [];
    const own = [st.maxActive == null && 'max active', st.admissionRate == null && 'the admission rate'].filter(Boolean);
    if (own.length) notes.push(`${own.join(' and ').replace(/^./, (c) => c.toUpperCase())} ${own.length > 1 ? 'are' : 'is'} the server's own setting${own.length > 1 ? 's' : ''}.`);
    if (st.maxActive != null && st.maxActive !== l.maxActive) {
      notes.push(`Max active is set to ${nf.format(st.maxActive)}; ${nf.format(l.maxActive)} in force while ${
        l.seatsLeft == null ? 'few' : nf.format(l.seatsLeft)} seat${l.seatsLeft === 1 ? ' is' : 's are'} left (${
        rateNf.format(l.activePerSeat)} active per unsold seat at most).`);
    }
    setText('fig-note', notes.join(' '));

    // Fill the inputs with what is in force, unless the operator is typing there.
    fillInput(el('max-active-input'), st.maxActive != null ? st.maxActive : l.maxActive);
    fillInput(el('rate-input'), st.admissionRate != null ? st.admissionRate : l.admissionRate);
    renderToggles(st);
    setControlsEnabled(!S.busy);
  }

  function fillInput(input, value) {
    if (input.dataset.dirty || document.activeElement === input) return;
    const v = value == null ? '' : String(value);
    if (input.value !== v) input.value = v;
  }

  // Pause or Resume, Close or Reopen: one of each pair is shown; focus follows a button that goes away.
  const PAIRS = { 'pause-btn': 'resume-btn', 'resume-btn': 'pause-btn', 'close-btn': 'reopen-btn', 'reopen-btn': 'close-btn' };
  function renderToggles(st) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.testid : null;
    el('pause-btn').hidden = !!st.paused;
    el('resume-btn').hidden = !st.paused;
    el('close-btn').hidden = !!st.closed;
    el('reopen-btn').hidden = !st.closed;
    if (focused && PAIRS[focused] && el(focused).hidden) el(PAIRS[focused]).focus();
  }

  function setControlsEnabled(on) {
    const ok = on && S.line != null;
    for (const id of ['max-active-apply', 'rate-apply', 'pause-btn', 'resume-btn', 'close-btn', 'reopen-btn']) el(id).disabled = !ok;
  }

  // ---------------------------------------------------------------- audit log

  const ACTION_WORDS = {
    pause: 'Paused admission',
    resume: 'Resumed admission',
    close: 'Closed the line',
    reopen: 'Reopened the line',
    set_max_active: 'Set max active',
    set_admission_rate: 'Set admission rate',
    change: 'Changed settings',
  };
  const FIELD_WORDS = { maxActive: 'max active', admissionRate: 'admission rate', paused: 'paused', closed: 'closed' };

  function settingValue(k, v) {
    if (v == null) return 'server setting';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'number') return k === 'admissionRate' ? `${rateNf.format(v)}/s` : nf.format(v);
    return String(v);
  }

  // Only what changed: "max active: server setting → 5; paused: no → yes".
  function changeWords(before, after) {
    const b = before || {};
    const a = after || {};
    const keys = Array.from(new Set([...Object.keys(FIELD_WORDS), ...Object.keys(b), ...Object.keys(a)]));
    const parts = [];
    for (const k of keys) {
      if (!(k in a) && !(k in b)) continue;
      if (JSON.stringify(b[k]) === JSON.stringify(a[k])) continue;
      parts.push(`${FIELD_WORDS[k] || k}: ${settingValue(k, b[k])} → ${settingValue(k, a[k])}`);
    }
    return parts.length ? parts.join('; ') : 'no change';
  }

  let lastAuditKey = '';
  function renderAudit(entries) {
    const key = JSON.stringify(entries.map((e) => e.id)) + S.concerts.length;
    const n = entries.length;
    setText('audit-status', n
      ? `The latest ${n === 1 ? 'action' : `${n} actions`}, newest first (all concerts).`
      : 'No operator actions yet.');
    if (key === lastAuditKey) return;
    lastAuditKey = key;
    const body = el('audit-rows');
    body.textContent = '';
    for (const e of entries) {
      const tr = document.createElement('tr');
      tr.dataset.testid = `audit-row-${e.id}`;
      tr.dataset.kind = e.action;
      tr.className = 'audit-row';
      const td = (text, cls) => {
        const c = document.createElement('td');
        c.textContent = text;
        if (cls) c.className = cls;
        tr.appendChild(c);
        return c;
      };
      const t = document.createElement('td');
      const time = document.createElement('time');
      time.dateTime = e.at;
      time.title = fmtDateTime(e.at);
      time.textContent = fmtTime(e.at);
      t.appendChild(time);
      tr.appendChild(t);
      td(concertName(e.concertId));
      td(ACTION_WORDS[e.action] || e.action, 'audit-action');
      td(changeWords(e.before, e.after), 'audit-change');
      body.appendChild(tr);
    }
  }

  // ---------------------------------------------------------------- controls

  // from: the button (or input) that asked for the change; focus stays with it or its counterpart.
  async function change(body, done, from) {
    if (S.busy || S.concertId == null) return;
    S.busy = true;
    setControlsEnabled(false);
    setText('control-msg', '');
    showBox('control-error', '');
    const gen = S.gen;
    stopRefresh();
    S.loop++; // answers of a refresh already on its way are older than this change
    try {
      const res = await api('PATCH', `/admin/concerts/${S.concertId}/line`, { body });
      if (gen !== S.gen) return;
      if ('maxActive' in body) delete el('max-active-input').dataset.dirty;
      if ('admissionRate' in body) delete el('rate-input').dataset.dirty;
      S.busy = false;
      if (res && res.line) renderLine(res.line);
      if (from && (document.activeElement === document.body || document.activeElement === from || !document.activeElement)) {
        const to = from.hidden && PAIRS[from.dataset.testid] ? el(PAIRS[from.dataset.testid]) : from;
        if (!to.hidden) to.focus();
      }
      setText('control-msg', done(res || {}));
      startRefresh(); // the audit log at once
    } catch (e) {
      if (gen !== S.gen) return;
      if (e.status === 401) {
        showLogin('The admin secret was refused: it may have changed on the server. Sign in again.');
        return;
      }
      showBox('control-error', `That did not work: ${errorText(e)}`);
      startRefresh();
    } finally {
      S.busy = false;
      if (gen === S.gen) setControlsEnabled(true);
    }
  }

  function fieldError(input, text) {
    input.setAttribute('aria-invalid', 'true');
    showBox('control-error', text);
    input.focus();
  }

  function applyMaxActive(ev) {
    ev.preventDefault();
    const input = el('max-active-input');
    const v = input.value.trim();
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n < 1 || n > 10000000) {
      fieldError(input, 'Max active must be a whole number from 1 to 10,000,000.');
      return;
    }
    input.removeAttribute('aria-invalid');
    change({ maxActive: n }, (res) => {
      const l = res.line;
      let msg = `Max active set to ${nf.format(n)}.`;
      if (l && l.maxActive !== n) msg += ` ${nf.format(l.maxActive)} in force while seats are few.`;
      return msg;
    }, input);
  }

  function applyRate(ev) {
    ev.preventDefault();
    const input = el('rate-input');
    const v = input.value.trim();
    const n = Number(v);
    if (!v || !Number.isFinite(n) || n <= 0 || n > 1000000) {
      fieldError(input, 'The admission rate must be a number more than 0 and at most 1,000,000.');
      return;
    }
    input.removeAttribute('aria-invalid');
    change({ admissionRate: n }, () => `Admission rate set to ${rateNf.format(n)} per second.`, input);
  }

  function askClose() {
    const l = S.line;
    const waiting = l ? l.waiting : 0;
    setText('close-text', `Close the line for ${concertName(S.concertId)}? ${
      waiting ? `The ${nf.format(waiting)} ${waiting === 1 ? 'person' : 'people'} waiting lose${waiting === 1 ? 's' : ''} their place and ${waiting === 1 ? 'is' : 'are'} told the line is closed. `
        : ''}Nobody can join until you reopen it. People already choosing seats can finish.`);
    const d = el('close-dialog');
    if (typeof d.showModal === 'function') d.showModal();
    else if (window.confirm(el('close-text').textContent)) closeLine();
  }

  function closeDialog(focusId) {
    const d = el('close-dialog');
    if (d.open) d.close();
    const f = el(focusId);
    if (f && !f.hidden) f.focus();
  }

  function closeLine() {
    closeDialog('close-btn');
    change({ closed: true }, () => 'The line is closed: the people waiting were told, and nobody can join.', el('close-btn'));
  }

  // ---------------------------------------------------------------- wiring

  el('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = el('admin-secret');
    const v = input.value.trim();
    if (!v) {
      showBox('login-error', 'Type the admin secret first.');
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    signIn(v);
  });
  el('admin-secret').addEventListener('input', () => {
    el('admin-secret').removeAttribute('aria-invalid');
  });

  el('concert-select').addEventListener('change', (ev) => chooseConcert(Number(ev.target.value)));
  el('max-active-form').addEventListener('submit', applyMaxActive);
  el('rate-form').addEventListener('submit', applyRate);
  for (const id of ['max-active-input', 'rate-input']) {
    el(id).addEventListener('input', (ev) => {
      ev.target.dataset.dirty = '1';
      ev.target.removeAttribute('aria-invalid');
    });
  }

  document.addEventListener('click', (ev) => {
    const t = ev.target.closest('[data-action]');
    if (!t) return;
    const a = t.dataset.action;
    if (a === 'pause') change({ paused: true }, () => 'Admission paused: nobody is let in, and everybody waiting keeps their place.', t);
    else if (a === 'resume') change({ paused: false }, () => 'Admission resumed.', t);
    else if (a === 'close') askClose();
    else if (a === 'close-confirm') closeLine();
    else if (a === 'close-cancel') closeDialog('close-btn');
    else if (a === 'reopen') change({ closed: false }, () => 'The line is open again: people can join.', t);
    else if (a === 'logout') showLogin();
    else if (a === 'dismiss-error') showBox('admin-error', '');
  });

  // Escape (or the browser's own close) on the dialog: keep the line open.
  el('close-dialog').addEventListener('cancel', (ev) => { ev.preventDefault(); closeDialog('close-btn'); });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.secret && !S.busy) startRefresh();
  });

  // ---------------------------------------------------------------- start

  let saved = null;
  try { saved = sessionStorage.getItem(SECRET_KEY); } catch (_) { /* private mode */ }
  if (saved) {
    el('view-login').hidden = true;
    signIn(saved, { quiet: true });
  } else {
    showLogin();
  }
})();
