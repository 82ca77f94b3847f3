// boxoffice operator page (/admin): the live figures of a concert's waiting line and its controls
// (max active, admission rate, pause / resume, close / reopen), the scheduled on-sale with its pre-queue
// and draw, a form for new concerts, and the audit log of operator actions.
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
    draw: null, // {key: concertId + onSaleAt, data: the published draw}
    creating: false,
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

  // The browser's time zone, for the datetime-local inputs: "Asia/Seoul, UTC+09:00".
  function tzName() {
    let name = '';
    try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (_) { /* old browser */ }
    const off = -new Date().getTimezoneOffset();
    const sign = off < 0 ? '-' : '+';
    const utc = `UTC${sign}${two(Math.floor(Math.abs(off) / 60))}:${two(Math.abs(off) % 60)}`;
    return name && name !== 'UTC' ? `${name}, ${utc}` : utc;
  }

  // A datetime-local value ("2027-01-01T19:00" or with seconds), read in this browser's time zone, as
  // an RFC 3339 UTC string; null when it is not a date and time.
  function localInputToIso(v) {
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(v || '')) return null;
    const [d, t] = v.split('T');
    const [y, mo, da] = d.split('-').map(Number);
    const [hh, mi, ss] = t.split(':').map(Number);
    const date = new Date(y, mo - 1, da, hh, mi, Math.floor(ss || 0));
    return Number.isNaN(date.getTime()) ? null : date.toISOString();
  }

  // An RFC 3339 instant as a datetime-local value in this browser's time zone, to the second.
  function isoToLocalInput(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  // Seconds to go as "m:ss", "h:mm:ss" or "N d h:mm:ss".
  function fmtCountdown(sec) {
    const s = Math.max(0, Math.ceil(sec));
    const d = Math.floor(s / 86400);
    const hms = s % 86400;
    const h = Math.floor(hms / 3600);
    const m = Math.floor((hms % 3600) / 60);
    const rest = two(hms % 60);
    if (d) return `${d} d ${h}:${two(m)}:${rest}`;
    return h ? `${h}:${two(m)}:${rest}` : `${m}:${rest}`;
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
    fillConcerts();
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

  function fillConcerts() {
    const select = el('concert-select');
    select.textContent = '';
    for (const c of S.concerts) {
      const o = document.createElement('option');
      o.value = String(c.concertId);
      o.textContent = `${c.title} · ${c.venue}`;
      select.appendChild(o);
    }
    select.disabled = S.concerts.length === 0;
  }

  function chooseConcert(id) {
    S.concertId = id;
    S.line = null;
    S.gen++;
    try { sessionStorage.setItem(CONCERT_KEY, String(id)); } catch (_) { /* ignore */ }
    for (const n of [el('max-active-input'), el('rate-input'), el('onsale-input')]) {
      n.value = '';
      delete n.dataset.dirty;
      n.removeAttribute('aria-invalid');
    }
    setText('control-msg', '');
    showBox('control-error', '');
    setText('onsale-msg', '');
    showBox('onsale-error', '');
    S.draw = null;
    renderOnSale(null);
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
      if (line) await refreshDraw(line, stale);
      if (stale()) return;
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

  // The published draw of a scheduled on-sale: read once when the on-sale is set (for its commitment),
  // then every refresh from a second before the on-sale time until it has been drawn; never again after.
  function drawKey(line) { return `${line.concertId}@${line.onSaleAt}`; }
  async function refreshDraw(line, stale) {
    if (!line.onSaleAt) return;
    const key = drawKey(line);
    const have = S.draw && S.draw.key === key ? S.draw.data : null;
    if (have && (have.drawn || Date.now() < Date.parse(line.onSaleAt) - 1000)) return;
    try {
      const d = await api('GET', `/concerts/${line.concertId}/draw`, { auth: false });
      if (stale() || !d) return;
      S.draw = { key, data: d };
      renderOnSale(S.line);
    } catch (_) {
      // The figures still show; the next refresh asks again.
    }
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
    fillInput(el('onsale-input'), l.onSaleAt ? isoToLocalInput(l.onSaleAt) : '');
    renderOnSale(l);
    setControlsEnabled(!S.busy);
  }

  // The on-sale card: what is scheduled, the countdown, the pre-queue, the commitment, the draw.
  function renderOnSale(l) {
    const stateEl = el('onsale-state');
    const draw = l && l.onSaleAt && S.draw && S.draw.key === drawKey(l) ? S.draw.data : null;
    let state = '';
    let words = 'Loading…';
    if (l && !l.onSaleAt) {
      state = 'none';
      words = 'No on-sale is scheduled: people who join go straight into the line.';
    } else if (l) {
      const at = `${fmtDateTime(l.onSaleAt)} (${tzName()})`;
      if (draw && draw.drawn) {
        const n = draw.entries.length;
        state = 'drawn';
        words = `The draw has run: sales opened at ${at}, and ${n === 0 ? 'nobody was in the pre-queue'
          : `${nf.format(n)} pre-queue ${n === 1 ? 'entry was' : 'entries were'} given places in the line`}. The on-sale can no longer move.`;
      } else if (Date.now() >= Date.parse(l.onSaleAt)) {
        state = 'drawing';
        words = `Sales open at ${at}: the draw is running.`;
      } else {
        state = 'scheduled';
        words = `Scheduled: sales open at ${at}. People who join before then wait in the pre-queue.`;
      }
    }
    stateEl.dataset.state = state;
    setText('onsale-state', words);
    setText('onsale-at', l && l.onSaleAt ? fmtDateTime(l.onSaleAt) : (l ? 'not scheduled' : '–'));
    setText('fig-prequeue', l ? nf.format(l.preQueue || 0) : '–');
    setText('draw-entries', draw && draw.drawn ? nf.format(draw.entries.length) : (l && l.onSaleAt ? 'not drawn yet' : '–'));
    const commitment = l && l.drawCommitment;
    el('draw-commitment-row').hidden = !commitment;
    setText('draw-commitment', commitment || '');
    const link = el('draw-link');
    el('draw-link-row').hidden = !(draw && draw.drawn);
    if (l) {
      const href = `${API}/concerts/${l.concertId}/draw`;
      if (link.getAttribute('href') !== href) link.setAttribute('href', href);
    }
    tickCountdown();
  }

  function tickCountdown() {
    const l = S.line;
    let text = '–';
    if (l && l.concertId === S.concertId) {
      if (!l.onSaleAt) text = 'not scheduled';
      else {
        const left = (Date.parse(l.onSaleAt) - Date.now()) / 1000;
        text = left > 0 ? fmtCountdown(left) : 'started';
      }
    }
    setText('onsale-countdown', text);
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
    for (const id of ['max-active-apply', 'rate-apply', 'pause-btn', 'resume-btn', 'close-btn', 'reopen-btn', 'onsale-apply']) {
      el(id).disabled = !ok;
    }
  }

  // ---------------------------------------------------------------- audit log

  const ACTION_WORDS = {
    pause: 'Paused admission',
    resume: 'Resumed admission',
    close: 'Closed the line',
    reopen: 'Reopened the line',
    set_max_active: 'Set max active',
    set_admission_rate: 'Set admission rate',
    schedule_on_sale: 'Scheduled the on-sale',
    create_concert: 'Created the concert',
    change: 'Changed settings',
  };
  const FIELD_WORDS = {
    maxActive: 'max active', admissionRate: 'admission rate', paused: 'paused', closed: 'closed', onSaleAt: 'on-sale',
  };

  function settingValue(k, v) {
    if (k === 'onSaleAt') return v == null ? 'none' : fmtDateTime(new Date(v).toISOString());
    if (v == null) return 'server setting';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'number') return k === 'admissionRate' ? `${rateNf.format(v)}/s` : nf.format(v);
    return String(v);
  }

  // Only what changed: "max active: server setting → 5; paused: no → yes".
  function changeWords(before, after, action) {
    if (action === 'create_concert' && after) {
      const dates = (after.dates || []).length;
      const tiers = (after.priceTiers || []).length;
      return `${after.title} at ${after.venue}: ${dates} ${dates === 1 ? 'date' : 'dates'} of ${nf.format(after.seatCount)} ${
        after.seatCount === 1 ? 'seat' : 'seats'}, ${tiers} price ${tiers === 1 ? 'tier' : 'tiers'}`;
    }
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
      td(changeWords(e.before, e.after, e.action), 'audit-change');
      body.appendChild(tr);
    }
  }

  // ---------------------------------------------------------------- controls

  // from: the button (or input) that asked for the change; focus stays with it or its counterpart.
  // where: the message and error boxes ({msg, err}), and fail(e) for an error's words of its own.
  async function change(body, done, from, where = {}) {
    if (S.busy || S.concertId == null) return;
    const msgId = where.msg || 'control-msg';
    const errId = where.err || 'control-error';
    S.busy = true;
    setControlsEnabled(false);
    setText(msgId, '');
    showBox(errId, '');
    const gen = S.gen;
    stopRefresh();
    S.loop++; // answers of a refresh already on its way are older than this change
    try {
      const res = await api('PATCH', `/admin/concerts/${S.concertId}/line`, { body });
      if (gen !== S.gen) return;
      if ('maxActive' in body) delete el('max-active-input').dataset.dirty;
      if ('admissionRate' in body) delete el('rate-input').dataset.dirty;
      if ('onSaleAt' in body) delete el('onsale-input').dataset.dirty;
      S.busy = false;
      if (res && res.line) renderLine(res.line);
      if (from && (document.activeElement === document.body || document.activeElement === from || !document.activeElement)) {
        const to = from.hidden && PAIRS[from.dataset.testid] ? el(PAIRS[from.dataset.testid]) : from;
        if (!to.hidden) to.focus();
      }
      setText(msgId, done(res || {}));
      startRefresh(); // the audit log at once
    } catch (e) {
      if (gen !== S.gen) return;
      if (e.status === 401) {
        showLogin('The admin secret was refused: it may have changed on the server. Sign in again.');
        return;
      }
      showBox(errId, (where.fail && where.fail(e)) || `That did not work: ${errorText(e)}`);
      startRefresh();
    } finally {
      S.busy = false;
      if (gen === S.gen) setControlsEnabled(true);
    }
  }

  function fieldError(input, text, errId = 'control-error') {
    input.setAttribute('aria-invalid', 'true');
    showBox(errId, text);
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

  function applyOnSale(ev) {
    ev.preventDefault();
    const input = el('onsale-input');
    const iso = localInputToIso(input.value.trim());
    if (!iso) {
      fieldError(input, 'Pick the day and time sales open.', 'onsale-error');
      return;
    }
    if (Date.parse(iso) <= Date.now()) {
      fieldError(input, 'That time has passed: pick a time still to come (a past time would run the draw at once).', 'onsale-error');
      return;
    }
    input.removeAttribute('aria-invalid');
    change({ onSaleAt: iso }, (res) => {
      const at = res.line && res.line.onSaleAt ? res.line.onSaleAt : iso;
      const moved = res.before && res.before.onSaleAt != null;
      return `On-sale ${moved ? 'moved' : 'scheduled'}: sales open at ${fmtDateTime(at)} (${tzName()}).`;
    }, input, {
      msg: 'onsale-msg',
      err: 'onsale-error',
      fail: (e) => (e.code === 'ON_SALE_STARTED'
        ? 'The draw has already run; the on-sale can no longer move.' : null),
    });
  }

  // ---------------------------------------------------------------- new concert

  let rowSeq = 0;

  function openNewConcert() {
    const form = el('new-concert-form');
    form.hidden = false;
    el('new-concert-toggle').setAttribute('aria-expanded', 'true');
    if (!el('nc-dates').children.length) addDate(false);
    if (!el('nc-tiers').children.length) addTier(false);
    setText('concert-msg', '');
    el('nc-title').focus();
  }

  function closeNewConcert({ reset = false, focus = true } = {}) {
    el('new-concert-form').hidden = true;
    el('new-concert-toggle').setAttribute('aria-expanded', 'false');
    showBox('nc-error', '');
    if (reset) {
      el('new-concert-form').reset();
      el('nc-dates').textContent = '';
      el('nc-tiers').textContent = '';
      for (const n of el('new-concert-form').querySelectorAll('[aria-invalid]')) n.removeAttribute('aria-invalid');
    }
    if (focus) el('new-concert-toggle').focus();
  }

  function smallInput(type, testid, labelText, attrs = {}) {
    const id = `nc-${testid}-${++rowSeq}`;
    const wrap = document.createElement('div');
    wrap.className = 'cell';
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = labelText;
    const input = document.createElement('input');
    input.type = type;
    input.id = id;
    input.dataset.testid = testid;
    input.autocomplete = 'off';
    for (const [k, v] of Object.entries(attrs)) input.setAttribute(k, v);
    wrap.append(label, input);
    return { wrap, input, label };
  }

  function removeButton(action) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link';
    b.dataset.action = action;
    b.textContent = 'Remove';
    return b;
  }

  // Numbers the rows of a list ("Date 2", "Remove tier 2") and shows Remove only when there are two or more.
  function renumber(listId, noun) {
    const rows = Array.from(el(listId).children);
    rows.forEach((li, i) => {
      const name = `${noun} ${i + 1}`;
      const group = li.querySelector('[role="group"]');
      if (group) group.setAttribute('aria-label', name);
      const lbl = li.querySelector('.row-name');
      if (lbl) lbl.textContent = name;
      const rm = li.querySelector('button[data-action^="remove-"]');
      rm.setAttribute('aria-label', `Remove ${noun.toLowerCase()} ${i + 1}`);
      rm.hidden = rows.length < 2;
    });
  }

  function addDate(focus = true) {
    const li = document.createElement('li');
    li.dataset.testid = 'nc-date-row';
    const { wrap, input, label } = smallInput('datetime-local', 'nc-date', 'Date', { step: '60' });
    label.className = 'row-name';
    li.append(wrap, removeButton('remove-date'));
    el('nc-dates').appendChild(li);
    renumber('nc-dates', 'Date');
    if (focus) input.focus();
  }

  function addTier(focus = true) {
    const list = el('nc-tiers');
    const prev = list.lastElementChild;
    let from = '1';
    if (prev) {
      const to = Number(prev.querySelector('[data-testid="nc-tier-to"]').value);
      from = Number.isInteger(to) && to > 0 ? String(to + 1) : '';
    }
    const li = document.createElement('li');
    li.dataset.testid = 'nc-tier-row';
    const group = document.createElement('div');
    group.setAttribute('role', 'group');
    group.className = 'tier';
    const name = document.createElement('span');
    name.className = 'row-name';
    name.setAttribute('aria-hidden', 'true');
    const num = { type: 'number', inputmode: 'numeric', min: '1', step: '1' };
    const f = smallInput('number', 'nc-tier-from', 'From seat', num);
    const t = smallInput('number', 'nc-tier-to', 'To seat', num);
    const p = smallInput('number', 'nc-tier-price', 'Price (points)', num);
    f.input.value = from;
    group.append(name, f.wrap, t.wrap, p.wrap, removeButton('remove-tier'));
    li.appendChild(group);
    list.appendChild(li);
    renumber('nc-tiers', 'Tier');
    if (focus) (from ? t.input : f.input).focus();
  }

  function removeRow(button, listId, noun, addId) {
    const li = button.closest('li');
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    renumber(listId, noun);
    const to = next && next.querySelector('input');
    (to || el(addId)).focus();
  }

  function ncError(input, text) {
    if (input) input.setAttribute('aria-invalid', 'true');
    showBox('nc-error', text);
    if (input) input.focus();
  }

  const wholeNumber = (v) => /^[0-9]+$/.test(String(v).trim());

  async function createConcert(ev) {
    ev.preventDefault();
    if (S.creating) return;
    const form = el('new-concert-form');
    for (const n of form.querySelectorAll('[aria-invalid]')) n.removeAttribute('aria-invalid');
    showBox('nc-error', '');
    const title = el('nc-title').value.trim();
    const venue = el('nc-venue').value.trim();
    if (!title) return ncError(el('nc-title'), 'Give the concert a title.');
    if (!venue) return ncError(el('nc-venue'), 'Say where the concert is (the venue).');
    const dates = [];
    const dateInputs = Array.from(el('nc-dates').querySelectorAll('[data-testid="nc-date"]'));
    if (!dateInputs.length) return ncError(null, 'Add at least one date.');
    for (const [i, input] of dateInputs.entries()) {
      const iso = localInputToIso(input.value.trim());
      if (!iso) return ncError(input, `Date ${i + 1}: pick the day and time it starts.`);
      dates.push(iso);
    }
    const seatsInput = el('nc-seats');
    if (!wholeNumber(seatsInput.value) || Number(seatsInput.value) < 1) {
      return ncError(seatsInput, 'The seat count must be a whole number, 1 or more.');
    }
    const seatCount = Number(seatsInput.value);
    const priceTiers = [];
    const tierRows = Array.from(el('nc-tiers').children);
    if (!tierRows.length) return ncError(null, 'Add at least one price tier.');
    for (const [i, li] of tierRows.entries()) {
      const tier = {};
      for (const [key, testid, words] of [['fromSeat', 'nc-tier-from', 'from seat'], ['toSeat', 'nc-tier-to', 'to seat'],
        ['price', 'nc-tier-price', 'price']]) {
        const input = li.querySelector(`[data-testid="${testid}"]`);
        if (!wholeNumber(input.value)) return ncError(input, `Tier ${i + 1}: the ${words} must be a whole number.`);
        tier[key] = Number(input.value);
      }
      priceTiers.push(tier);
    }
    // Whether the tiers cover every seat once, and every limit, is the server's to say.
    S.creating = true;
    const button = el('nc-create');
    button.disabled = true;
    const gen = S.gen;
    try {
      const res = await api('POST', '/admin/concerts', { body: { title, venue, dates, seatCount, priceTiers } });
      if (gen !== S.gen) return;
      try {
        const list = await api('GET', '/concerts', { auth: false });
        S.concerts = list.concerts || [];
      } catch (_) { /* the answer says enough */ }
      if (!S.concerts.some((c) => c.concertId === res.concertId)) {
        S.concerts.push({ concertId: res.concertId, title: res.title, venue: res.venue });
      }
      fillConcerts();
      closeNewConcert({ reset: true, focus: false });
      el('concert-select').value = String(res.concertId);
      chooseConcert(res.concertId);
      const n = (res.schedules || []).length;
      setText('concert-msg', `Created “${res.title}” at ${res.venue} (concert #${res.concertId}): ${n} ${n === 1 ? 'date' : 'dates'} of ${
        nf.format(seatCount)} seats. It is selected: schedule its on-sale before fans arrive.`);
      el('concert-select').focus();
    } catch (e) {
      if (gen !== S.gen) return;
      if (e.status === 401) {
        showLogin('The admin secret was refused: it may have changed on the server. Sign in again.');
        return;
      }
      showBox('nc-error', e.status === 422 && e.detail
        ? `The server did not accept the concert: ${e.detail}.` : `The concert was not created: ${errorText(e)}`);
    } finally {
      S.creating = false;
      button.disabled = false;
    }
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
  el('onsale-form').addEventListener('submit', applyOnSale);
  el('new-concert-form').addEventListener('submit', createConcert);
  el('new-concert-form').addEventListener('input', (ev) => ev.target.removeAttribute('aria-invalid'));
  for (const id of ['max-active-input', 'rate-input', 'onsale-input']) {
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
    else if (a === 'new-concert') {
      if (el('new-concert-form').hidden) openNewConcert();
      else closeNewConcert();
    } else if (a === 'new-concert-cancel') closeNewConcert();
    else if (a === 'add-date') addDate();
    else if (a === 'add-tier') addTier();
    else if (a === 'remove-date') removeRow(t, 'nc-dates', 'Date', 'nc-add-date');
    else if (a === 'remove-tier') removeRow(t, 'nc-tiers', 'Tier', 'nc-add-tier');
  });

  // Escape (or the browser's own close) on the dialog: keep the line open.
  el('close-dialog').addEventListener('cancel', (ev) => { ev.preventDefault(); closeDialog('close-btn'); });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.secret && !S.busy) startRefresh();
  });

  // The on-sale countdown runs between refreshes.
  setInterval(tickCountdown, 250);
  for (const id of ['onsale-tz', 'nc-tz']) setText(id, tzName());

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
