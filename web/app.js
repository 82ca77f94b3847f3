// boxoffice pages: concerts → waiting room → date and seats → hold, points, pay → confirmation,
// plus "My tickets", letting go of a hold and leaving the line.
// Plain browser JavaScript, no build step. Talks to the JSON API under /api/v1.
'use strict';

(() => {
  const API = '/api/v1';
  const SEAT_REFRESH_MS = 2000;
  const SCHEDULE_REFRESH_MS = 10000;
  const SEAT_COLUMNS = 10;
  const SESSION_KEY = 'boxoffice.session';
  const USER_KEY = 'boxoffice.user';
  const PROOF_KEY = 'boxoffice.proof'; // {userId: last token}: any signed token shows that user's tickets
  const SCHEDULES_KEY = 'boxoffice.schedules'; // {scheduleId: {startsAt, title}} for "My tickets"
  const DEFAULT_MAX_SEATS = 4; // the server's default --max-seats-per-order; corrected if it says otherwise

  const el = (id) => document.querySelector(`[data-testid="${id}"]`);
  const views = Array.from(document.querySelectorAll('[data-view]'));

  const S = {
    view: 'concerts',
    concerts: [],
    userId: null,
    concert: null, // {concertId, title, venue}
    token: null,
    activeUntil: null, // ms, server clock
    startPos: null, // the largest position seen in this wait, for the progress bar
    watchGen: 0, // bumps whenever waiting-room watching starts/stops; stale callbacks check it
    es: null,
    pollTimer: null,
    schedules: [],
    scheduleId: null,
    seats: [],
    seatGen: 0,
    seatTimer: null,
    lastSchedulesAt: 0,
    selectedSeats: [], // seat numbers picked on the current date, in the order picked
    maxSeats: DEFAULT_MAX_SEATS,
    heldElsewhere: null, // a live hold found after HOLD_LIMIT, offered to the person
    focusSeat: null,
    hold: null, // reservation + {scheduleId, startsAt}
    payKey: null, // Idempotency-Key for the current reservation, reused on retry
    balance: null,
    busy: false,
    skewMs: 0, // server clock − local clock
    holdWarned: false,
    checkingEnd: false,
    announcedPos: null,
    chargeKey: null,
    ticketsBack: null, // the view "My tickets" was opened from
    ticketsUser: null,
    tickets: [],
    leaveOpener: null, // the button that opened the leave dialog (focus goes back to it)
    lastStanding: null, // the last WAITING answer shown
    preQueue: null, // the last PRE_QUEUE answer: {onSaleAt (ms, server clock), entryId}
  };

  // The line ended for everybody (not just this person's turn): the status, or the 410 code of a join.
  const LINE_ENDED = {
    SOLD_OUT: {
      title: 'Sold out',
      msg: 'Sold out — every seat has been sold. The line has closed.',
      more: 'Nobody else can be let in, so your place in line has ended. If you bought a ticket, it is in My tickets.',
    },
    LINE_CLOSED: {
      title: 'The line is closed',
      msg: 'The line has been closed by the organiser.',
      more: 'Your place in line has ended. If the organiser opens the line again, you can join it again from the concerts page.',
    },
  };

  // ---------------------------------------------------------------- helpers

  class ApiError extends Error {
    constructor(status, body, headers) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || (status === 0 ? 'NETWORK' : 'HTTP_' + status);
      this.detail = body && body.detail;
      this.body = body || {};
      this.retryAfter = headers ? parseRetryAfter(headers.get('retry-after')) : null;
    }
  }

  function parseRetryAfter(v) {
    if (v == null) return null;
    const n = Number(v);
    if (Number.isFinite(n)) return n;
    const t = Date.parse(v);
    return Number.isFinite(t) ? Math.max(0, (t - Date.now()) / 1000) : null;
  }

  async function api(method, path, { body, token, headers } = {}) {
    const h = Object.assign({ accept: 'application/json' }, headers || {});
    if (body !== undefined) h['content-type'] = 'application/json';
    if (token) h.authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(API + path, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (_) {
      throw new ApiError(0, { code: 'NETWORK', detail: 'Could not reach the box office. Check your connection and try again.' });
    }
    noteServerDate(res.headers.get('date'));
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) throw new ApiError(res.status, data, res.headers);
    return { data, headers: res.headers, status: res.status };
  }

  // The Date header has one-second resolution: only trust it for a clearly wrong local clock.
  function noteServerDate(v) {
    const t = v ? Date.parse(v) : NaN;
    if (!Number.isFinite(t)) return;
    const skew = t + 500 - Date.now();
    if (Math.abs(skew - S.skewMs) > 2500) S.skewMs = skew;
  }
  const serverNow = () => Date.now() + S.skewMs;

  const nf = new Intl.NumberFormat('en-US');
  const pts = (n) => `${nf.format(n)} points`;

  function fmtDay(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' }).format(d);
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: 'numeric', minute: '2-digit' }).format(d);
  }

  function fmtDate(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return new Intl.DateTimeFormat(undefined, {
      weekday: 'short', day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit',
    }).format(d);
  }

  // A moment as the time of day on this device, HH:MM:SS (24-hour).
  function fmtTimeOfDay(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  }

  // A countdown: "2:05", or "1:02:05" past an hour, or "3 days 4:05:00".
  function fmtCountdown(ms) {
    let s = Math.max(0, Math.ceil(ms / 1000));
    const days = Math.floor(s / 86400);
    s %= 86400;
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    const clock = hh || days ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
    return days ? `${days} day${days === 1 ? '' : 's'} ${clock}` : clock;
  }

  function fmtClock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const m = Math.floor(s / 60);
    return `${m}:${String(s % 60).padStart(2, '0')}`;
  }

  function fmtEta(sec) {
    if (sec == null) return 'working it out…';
    if (sec <= 1) return 'any moment now';
    if (sec < 60) return `about ${sec} seconds`;
    const m = Math.round(sec / 60);
    if (m < 60) return `about ${m} minute${m === 1 ? '' : 's'}`;
    const h = Math.floor(m / 60);
    return `about ${h} h ${m % 60} min`;
  }

  const bySeat = (a, b) => a - b;
  // "seat 5", "seats 5 and 6", "seats 3, 4 and 5"
  function seatWords(nos, cap) {
    const s = nos.slice().sort(bySeat);
    const w = s.length === 1 ? `seat ${s[0]}` : `seats ${s.slice(0, -1).join(', ')} and ${s[s.length - 1]}`;
    return cap ? w[0].toUpperCase() + w.slice(1) : w;
  }
  // "Seat 5", "Seats 5, 6"
  function seatShort(nos) {
    const s = nos.slice().sort(bySeat);
    return `${s.length === 1 ? 'Seat' : 'Seats'} ${s.join(', ')}`;
  }
  // The seats of a reservation (older answers only had seatNo).
  function holdSeats(h) {
    return h && Array.isArray(h.seatNos) && h.seatNos.length ? h.seatNos.slice().sort(bySeat) : h ? [h.seatNo] : [];
  }

  function newKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function setText(id, text) {
    const n = el(id);
    if (n && n.textContent !== text) n.textContent = text;
  }

  function showMsg(id, text) {
    const n = el(id);
    if (!n) return;
    if (text) {
      n.textContent = text;
      n.hidden = false;
    } else {
      n.hidden = true;
      n.textContent = '';
    }
  }

  function showError(text) {
    const b = el('error-banner');
    b.querySelector('.banner-text').textContent = text;
    b.hidden = false;
  }
  const clearError = () => { el('error-banner').hidden = true; };

  // ---------------------------------------------------------------- session (survives a reload)

  function saveSession() {
    try {
      if (!S.token) { sessionStorage.removeItem(SESSION_KEY); return; }
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({
        userId: S.userId, concert: S.concert, token: S.token, startPos: S.startPos, hold: S.hold, payKey: S.payKey,
      }));
    } catch (_) { /* private mode */ }
  }
  function loadSession() {
    try { return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null'); } catch (_) { return null; }
  }

  // A person's last token on this device, kept after it ends: "My tickets" accepts any validly
  // signed token of the user, also one that ended with a payment or by leaving the line.
  function readJson(key) {
    try { return JSON.parse(localStorage.getItem(key) || '{}') || {}; } catch (_) { return {}; }
  }
  function rememberProof(userId, token) {
    const all = readJson(PROOF_KEY);
    all[userId] = token;
    try { localStorage.setItem(PROOF_KEY, JSON.stringify(all)); } catch (_) { /* ignore */ }
  }
  function proofFor(userId) {
    return readJson(PROOF_KEY)[userId] || null;
  }
  // Dates seen while booking, so "My tickets" can name them (the dates need an ACTIVE token).
  function rememberSchedules(list, title) {
    const all = readJson(SCHEDULES_KEY);
    for (const s of list) all[s.scheduleId] = { startsAt: s.startsAt, title };
    try { localStorage.setItem(SCHEDULES_KEY, JSON.stringify(all)); } catch (_) { /* ignore */ }
  }
  function scheduleInfo(id) {
    return readJson(SCHEDULES_KEY)[id] || null;
  }

  // ---------------------------------------------------------------- views

  function show(view, { focus = true } = {}) {
    S.view = view;
    for (const v of views) v.hidden = v.dataset.view !== view;
    const steps = el('steps');
    const order = ['queue', 'booking', 'checkout', 'done'];
    steps.hidden = !order.includes(view);
    for (const li of steps.querySelectorAll('li')) {
      const i = order.indexOf(li.dataset.step);
      const cur = order.indexOf(view);
      li.classList.toggle('done', i < cur);
      if (i === cur) li.setAttribute('aria-current', 'step'); else li.removeAttribute('aria-current');
    }
    const who = el('who');
    if (S.userId && S.concert && view !== 'concerts' && view !== 'tickets') {
      who.textContent = `User ${S.userId} · ${S.concert.title}`;
      who.hidden = false;
    } else {
      who.hidden = true;
    }
    el('nav-tickets').hidden = view === 'tickets';
    if (view !== 'concerts') showMsg('left-msg', '');
    // A person looking at "My tickets" from the waiting room keeps their place watched.
    if (view !== 'queue' && view !== 'tickets') stopWatching();
    if (view !== 'booking') stopSeatRefresh();
    if (focus) {
      const h = document.querySelector(`[data-view="${view}"] h1`);
      if (h) h.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
    updateTitle();
  }

  function updateTitle(position) {
    const base = 'boxoffice';
    if (S.view === 'queue' && position != null) document.title = `#${position} in line — ${base}`;
    else if (S.view === 'booking') document.title = `Your turn! Pick a seat — ${base}`;
    else if (S.view === 'checkout') document.title = `${holdSeats(S.hold).length > 1 ? 'Seats' : 'Seat'} held — pay now — ${base}`;
    else if (S.view === 'done') document.title = `Booked — ${base}`;
    else if (S.view === 'tickets') document.title = `My tickets — ${base}`;
    else document.title = `${base} — tickets`;
  }

  // ---------------------------------------------------------------- 1. concerts and join

  async function loadConcerts() {
    setText('concerts-status', 'Loading concerts…');
    try {
      const { data } = await api('GET', '/concerts');
      S.concerts = data.concerts || [];
      renderConcerts();
    } catch (e) {
      setText('concerts-status', `Couldn't load the concerts: ${e.message}`);
      const list = el('concert-list');
      list.textContent = '';
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Try again';
      b.addEventListener('click', loadConcerts);
      li.appendChild(b);
      list.appendChild(li);
    }
  }

  function renderConcerts() {
    const list = el('concert-list');
    list.textContent = '';
    const n = S.concerts.length;
    setText('concerts-status', n ? `${n} concert${n === 1 ? '' : 's'} on sale` : 'Nothing is on sale right now.');
    for (const c of S.concerts) {
      const li = document.createElement('li');
      li.className = 'card concert';
      li.dataset.testid = `concert-${c.concertId}`;
      const h = document.createElement('h2');
      h.textContent = c.title;
      const p = document.createElement('p');
      p.className = 'venue';
      p.textContent = c.venue;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'primary';
      b.dataset.testid = `join-${c.concertId}`;
      b.textContent = 'Join the waiting room';
      b.setAttribute('aria-label', `Join the waiting room for ${c.title}`);
      b.addEventListener('click', () => join(c, b));
      li.append(h, p, b);
      list.appendChild(li);
    }
  }

  function readUserId() {
    const input = el('user-id');
    const v = input.value.trim();
    const err = el('user-id-error');
    if (!/^[0-9]+$/.test(v) || Number(v) < 1) {
      err.textContent = v ? `“${v}” isn't a user number. Use a whole number such as 7.` : 'Type your user number first.';
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return null;
    }
    err.hidden = true;
    input.removeAttribute('aria-invalid');
    return Number(v);
  }

  async function join(concert, button) {
    clearError();
    const userId = readUserId();
    if (userId == null) return;
    try { localStorage.setItem(USER_KEY, String(userId)); } catch (_) { /* ignore */ }
    if (button) button.disabled = true;
    try {
      await joinAs(userId, concert);
    } catch (e) {
      if (isLineEnded(e)) {
        S.userId = userId;
        S.concert = concert;
        lineEnded(e.code);
      } else if (e.code === 'USER_NOT_FOUND' || e.code === 'INVALID_ID' || e.status === 422) {
        const err = el('user-id-error');
        err.textContent = `There is no user ${userId} here. Try a smaller number.`;
        err.hidden = false;
        el('user-id').setAttribute('aria-invalid', 'true');
        el('user-id').focus();
      } else {
        showError(`Couldn't join the waiting room: ${e.message}`);
      }
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function joinAs(userId, concert) {
    const { data } = await api('POST', '/queue/tokens', { body: { userId, concertId: concert.concertId } });
    S.userId = userId;
    S.concert = concert;
    S.token = data.token;
    rememberProof(userId, data.token);
    S.hold = null;
    S.payKey = null;
    S.startPos = null;
    S.announcedPos = null;
    S.preQueue = null;
    saveSession();
    onStatus(data, true);
  }

  // A join or rejoin refused because the line is over: 410 SOLD_OUT or LINE_CLOSED.
  const isLineEnded = (e) => e && e.status === 410 && Object.prototype.hasOwnProperty.call(LINE_ENDED, e.code);

  // ---------------------------------------------------------------- 2. waiting room

  // One place that reacts to a standing, wherever it came from (join, events, polling).
  function onStatus(st, fromJoin) {
    if (st.activeUntil) S.activeUntil = Date.parse(st.activeUntil);
    if (st.status === 'WAITING' || st.status === 'PRE_QUEUE') {
      const render = st.status === 'WAITING' ? renderQueue : renderPreQueue;
      if (S.view === 'tickets' && S.ticketsBack === 'queue') {
        render(st); // kept up to date behind "My tickets"
      } else if (S.view !== 'queue') {
        if (st.status === 'WAITING') S.startPos = Math.max(S.startPos || 0, st.position || 0);
        show('queue');
        render(st);
        startWatching();
      } else {
        render(st);
      }
    } else if (LINE_ENDED[st.status]) {
      stopWatching();
      lineEnded(st.status);
    } else if (st.status === 'ACTIVE') {
      stopWatching();
      if (S.view === 'queue' || fromJoin || S.view === 'concerts' || S.view === 'ended'
        || (S.view === 'tickets' && S.ticketsBack === 'queue')) enterBooking(); // the turn has come: to the seats
    } else {
      stopWatching();
      tokenEnded('EXPIRED');
    }
  }

  function renderQueue(st) {
    const pos = st.position;
    if (pos == null) return;
    S.lastStanding = st;
    S.startPos = Math.max(S.startPos || 0, pos);
    saveSession();
    if (S.preQueue) {
      // The sale has started and the draw has given this person a place.
      S.preQueue = null;
      S.announcedPos = null;
      setText('prequeue-announce', '');
    }
    setQueueMode(false);
    setText('queue-concert', `${S.concert.title} · ${S.concert.venue}`);
    setText('queue-position', String(pos));
    showEntry('queue-entry', 'queue-entry-id', st.entryId);
    renderPaused(st);
    const ahead = pos - 1;
    setText('queue-ahead', ahead === 0 ? "You're next!" : `${nf.format(ahead)} ${ahead === 1 ? 'person' : 'people'} ahead of you`);
    const pct = S.startPos > 1 ? Math.round(((S.startPos - pos) / (S.startPos - 1)) * 100) : 100;
    const bar = el('queue-progress');
    bar.setAttribute('aria-valuenow', String(pct));
    bar.setAttribute('aria-valuetext', `${pct}% of the way to the front`);
    bar.firstElementChild.style.width = `${Math.max(pct, 2)}%`;
    setText('queue-eta', st.paused ? 'not known while admission is paused' : fmtEta(st.etaSeconds));
    // Announce a new place, not every ETA wobble.
    if (S.announcedPos !== pos) {
      S.announcedPos = pos;
      setText('queue-announce', `You are number ${pos} in line. Estimated wait ${fmtEta(st.etaSeconds)}.`);
    }
    updateTitle(pos);
  }

  // Admission paused while this person waits: by the organiser, or because every seat left is on
  // hold (seats may come back when the first hold runs out). The place in line is kept either way.
  function renderPaused(st) {
    const box = el('queue-paused');
    let text = '';
    if (st.paused === 'OPERATOR') {
      text = 'Admission is paused by the organiser; you keep your place.';
    } else if (st.paused === 'NO_SEATS') {
      const at = st.seatsMayReturnAt ? fmtTimeOfDay(st.seatsMayReturnAt) : '';
      text = at
        ? `All remaining seats are on hold right now. Seats may come back at ${at} when holds run out; you keep your place.`
        : 'All remaining seats are on hold right now. Seats may come back when holds run out; you keep your place.';
    } else if (st.paused) {
      text = 'Admission is paused for now; you keep your place.';
    }
    box.dataset.paused = st.paused || '';
    showMsg('queue-paused', text);
  }

  function showEntry(boxId, idId, entryId) {
    const box = el(boxId);
    const ok = typeof entryId === 'string' && entryId !== '';
    box.hidden = !ok;
    setText(idId, ok ? entryId : '');
  }

  // The waiting room shows either the place in line or, before sales open, the pre-queue.
  function setQueueMode(pre) {
    el('prequeue').hidden = !pre;
    el('queue-card').hidden = pre;
    setText('queue-title', pre ? "You're in the pre-queue" : "You're in line");
  }

  // Before sales open: a countdown to onSaleAt, and the entry id of this person's draw entry.
  function renderPreQueue(st) {
    const first = !S.preQueue;
    let at = Date.parse(st.onSaleAt);
    // startsInSeconds is measured on the server's clock; use it when the time itself is missing.
    if (!Number.isFinite(at) && Number.isFinite(st.startsInSeconds)) at = serverNow() + st.startsInSeconds * 1000;
    S.preQueue = { onSaleAt: Number.isFinite(at) ? at : null, entryId: st.entryId || null };
    S.lastStanding = null;
    setQueueMode(true);
    showMsg('queue-paused', '');
    setText('queue-concert', `${S.concert.title} · ${S.concert.venue}`);
    let when = 'Sales open soon.';
    if (S.preQueue.onSaleAt != null) {
      const iso = new Date(S.preQueue.onSaleAt).toISOString();
      // More than a day away: the date too.
      when = S.preQueue.onSaleAt - serverNow() > 86400000 ? `Sales open on ${fmtDate(iso)}.` : `Sales open at ${fmtTimeOfDay(iso)}.`;
    }
    setText('prequeue-at', when);
    showEntry('prequeue-entry', 'prequeue-entry-id', S.preQueue.entryId);
    tickPreQueue();
    if (first) {
      setText('prequeue-announce', `You are in the pre-queue. ${el('prequeue-at').textContent}${
        S.preQueue.entryId ? ` Your entry id is ${S.preQueue.entryId.split('').join(' ')}.` : ''}`);
    }
    document.title = 'Pre-queue — boxoffice';
  }

  function tickPreQueue() {
    if (!S.preQueue) return;
    const left = S.preQueue.onSaleAt == null ? null : S.preQueue.onSaleAt - serverNow();
    setText('prequeue-countdown', left == null ? '–' : left > 0 ? fmtCountdown(left) : 'Starting — the draw is under way…');
  }

  function setMode(mode) {
    const m = el('queue-mode');
    m.dataset.mode = mode;
    m.textContent = mode === 'live' ? 'Live updates' : mode === 'polling' ? 'Updates every few seconds' : '';
  }

  function startWatching() {
    stopWatching();
    const gen = S.watchGen;
    if (typeof window.EventSource === 'function') {
      const es = new EventSource(`${API}/queue/events?token=${encodeURIComponent(S.token)}`);
      S.es = es;
      setMode('live');
      es.addEventListener('status', (ev) => {
        if (gen !== S.watchGen) return;
        let st;
        try { st = JSON.parse(ev.data); } catch (_) { return; }
        onStatus(st);
      });
      es.onerror = () => {
        // The stream failed or ended: fall back to polling, which honours Retry-After.
        if (gen !== S.watchGen) { es.close(); return; }
        es.close();
        S.es = null;
        setMode('polling');
        poll(gen);
      };
    } else {
      setMode('polling');
      poll(gen);
    }
  }

  function stopWatching() {
    S.watchGen++;
    if (S.es) { S.es.close(); S.es = null; }
    clearTimeout(S.pollTimer);
    S.pollTimer = null;
  }

  async function poll(gen) {
    if (gen !== S.watchGen) return;
    let delay;
    try {
      const { data, headers } = await api('GET', '/queue/status', { token: S.token });
      if (gen !== S.watchGen) return;
      onStatus(data);
      if (data.status !== 'WAITING' && data.status !== 'PRE_QUEUE') return;
      delay = parseRetryAfter(headers.get('retry-after'));
      if (delay == null) delay = 2;
    } catch (e) {
      if (gen !== S.watchGen) return;
      if (e.status === 401) { stopWatching(); tokenEnded(e.code); return; }
      delay = e.retryAfter != null ? e.retryAfter : 3; // network trouble or 503: try again shortly
    }
    delay = Math.min(Math.max(delay, 1), 30);
    S.pollTimer = setTimeout(() => poll(gen), delay * 1000);
  }

  // ---------------------------------------------------------------- token ended

  function tokenEnded(code) {
    if (S.view === 'done') return; // paying ends the token; that is not a problem
    if (LINE_ENDED[code]) { lineEnded(code); return; }
    stopWatching();
    stopSeatRefresh();
    let msg;
    if (code === 'TOKEN_INVALID' || code === 'TOKEN_MISSING' || code === 'TOKEN_WRONG_CONCERT') {
      msg = 'Your place in line is no longer recognised (the box office may have restarted).';
    } else if (S.hold) {
      msg = `Your booking time ran out before the payment went through, so the hold on ${seatWords(holdSeats(S.hold))} will lapse.`;
    } else if (S.activeUntil && serverNow() >= S.activeUntil - 2000 && (S.view === 'booking' || S.view === 'checkout')) {
      msg = 'Your booking time ran out before a seat was paid for.';
    } else {
      msg = 'Your turn was dropped: it was not used in time, or its booking time ran out.';
    }
    el('token-ended-msg').textContent = `${msg} You can rejoin the waiting room; you will get a new place at the back of the line.`;
    S.hold = null;
    S.payKey = null;
    S.token = null;
    saveSession();
    show('ended');
  }

  // The line is over for everybody: sold out, or closed by the organiser. The token has ended.
  function lineEnded(code) {
    const what = LINE_ENDED[code];
    if (S.view === 'done') { S.token = null; saveSession(); return; } // bought the last seat: keep the confirmation
    stopWatching();
    stopSeatRefresh();
    S.hold = null;
    S.payKey = null;
    S.token = null;
    S.preQueue = null;
    saveSession();
    setText('closed-title', what.title);
    setText('line-closed-msg', what.msg);
    el('view-closed').dataset.reason = code;
    setText('closed-concert', S.concert ? `${S.concert.title} · ${S.concert.venue}` : '');
    setText('closed-more', what.more);
    if (S.view !== 'closed') show('closed');
    document.title = `${what.title} — boxoffice`;
  }

  async function rejoin() {
    if (!S.userId || !S.concert) { goHome(); return; }
    const b = el('rejoin-btn');
    b.disabled = true;
    clearError();
    try {
      await joinAs(S.userId, S.concert);
    } catch (e) {
      if (isLineEnded(e)) lineEnded(e.code);
      else showError(`Couldn't rejoin: ${e.message}`);
    } finally {
      b.disabled = false;
    }
  }

  // Common handling of errors from booking endpoints. Returns true if handled.
  function handleTokenError(e) {
    // 401: the token ended; 410 SOLD_OUT / LINE_CLOSED: the line closed while this person was in it.
    if (e.status === 401 || isLineEnded(e)) { tokenEnded(e.code); return true; }
    if (e.status === 403 && e.code === 'TOKEN_WAITING') {
      // Should not happen once admitted; go back to waiting.
      S.startPos = e.body.position || S.startPos;
      onStatus({ status: 'WAITING', position: e.body.position, etaSeconds: e.body.etaSeconds });
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- 3. date and seat

  // message: why the person is back here (a warning); note: what they just did (information).
  function enterBooking(message, note) {
    show('booking');
    showMsg('hold-expired-msg', message || '');
    showMsg('released-msg', note || '');
    showMsg('seat-taken-msg', '');
    hideHoldLimit();
    setText('seat-limit-msg', '');
    setText('max-seats', String(S.maxSeats));
    S.selectedSeats = [];
    renderSelection();
    loadSchedules().then(() => {
      if (S.scheduleId != null) loadSeats();
    });
    startSeatRefresh();
    tick();
  }

  async function loadSchedules() {
    try {
      const { data } = await api('GET', `/concerts/${S.concert.concertId}/schedules`, { token: S.token });
      S.schedules = data.schedules || [];
      S.lastSchedulesAt = Date.now();
      rememberSchedules(S.schedules, S.concert.title);
      renderDates();
    } catch (e) {
      if (!handleTokenError(e)) showError(`Couldn't load the dates: ${e.message}`);
    }
  }

  function renderDates() {
    const box = el('date-list');
    const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    box.textContent = '';
    for (const s of S.schedules) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'date';
      b.dataset.testid = `date-${s.scheduleId}`;
      const when = document.createElement('span');
      when.className = 'date-when';
      when.textContent = fmtDay(s.startsAt);
      const time = document.createElement('span');
      time.className = 'date-time';
      time.textContent = fmtTime(s.startsAt);
      const left = document.createElement('span');
      left.className = 'date-left';
      left.dataset.testid = `date-left-${s.scheduleId}`;
      const soldOut = s.availableSeats === 0;
      left.textContent = seatsLeft(s.availableSeats, s.seatCount);
      b.setAttribute('aria-label', `${fmtDate(s.startsAt)}, ${left.textContent}`);
      b.append(when, time, left);
      b.classList.toggle('soldout', soldOut);
      b.setAttribute('aria-pressed', String(s.scheduleId === S.scheduleId));
      b.addEventListener('click', () => selectDate(s.scheduleId));
      box.appendChild(b);
    }
    if (focused) {
      const again = box.querySelector(`[data-testid="${focused}"]`);
      if (again) again.focus();
    }
    if (S.schedules.length && S.schedules.every((s) => s.availableSeats === 0) && S.scheduleId == null) {
      el('seat-area').hidden = false;
      showMsg('soldout-msg', 'Every date is sold out. Seats on hold go back on sale if they are not paid for, so you may check again in a few minutes.');
    }
  }

  function seatsLeft(n, of) {
    return n === 0 ? 'Sold out' : `${nf.format(n)} of ${nf.format(of)} left`;
  }

  function selectDate(id) {
    if (S.scheduleId !== id) {
      S.scheduleId = id;
      S.seats = [];
      S.selectedSeats = [];
      S.focusSeat = null;
      el('seat-map').textContent = '';
      showMsg('seat-taken-msg', '');
      showMsg('hold-expired-msg', '');
      setText('seat-limit-msg', '');
    }
    for (const b of el('date-list').children) {
      b.setAttribute('aria-pressed', String(b.dataset.testid === `date-${id}`));
    }
    el('seat-area').hidden = false;
    renderSelection();
    loadSeats();
  }

  function startSeatRefresh() {
    stopSeatRefresh();
    const loop = async () => {
      if (S.view !== 'booking') return;
      if (Date.now() - S.lastSchedulesAt > SCHEDULE_REFRESH_MS) await loadSchedules();
      if (S.view !== 'booking') return;
      if (S.scheduleId != null && !document.hidden) await loadSeats();
      if (S.view === 'booking') S.seatTimer = setTimeout(loop, SEAT_REFRESH_MS);
    };
    S.seatTimer = setTimeout(loop, SEAT_REFRESH_MS);
  }
  function stopSeatRefresh() {
    clearTimeout(S.seatTimer);
    S.seatTimer = null;
  }

  async function loadSeats() {
    const id = S.scheduleId;
    if (id == null) return;
    const gen = ++S.seatGen;
    try {
      const { data } = await api('GET', `/schedules/${id}/seats`, { token: S.token });
      if (gen !== S.seatGen || id !== S.scheduleId || S.view !== 'booking') return; // a newer load or another date
      S.seats = data.seats || [];
      renderSeats();
    } catch (e) {
      if (gen !== S.seatGen) return;
      if (!handleTokenError(e)) setText('seats-updated', `Couldn't refresh the seats (${e.message}); retrying…`);
    }
  }

  function tiers() {
    const prices = Array.from(new Set(S.seats.map((s) => s.price))).sort((a, b) => b - a);
    return prices;
  }

  function renderSeats() {
    const map = el('seat-map');
    const prices = tiers();
    const hadFocus = map.contains(document.activeElement);
    const focusedNo = hadFocus ? Number(document.activeElement.dataset.seat) : null;

    // Build once per date, then update in place so focus and scrolling survive refreshes.
    if (map.children.length !== S.seats.length) {
      map.textContent = '';
      for (const s of S.seats) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'seat';
        b.dataset.seat = String(s.seatNo);
        b.dataset.testid = `seat-${s.seatNo}`;
        b.textContent = String(s.seatNo);
        b.tabIndex = -1;
        map.appendChild(b);
      }
    }
    let available = 0;
    let held = 0;
    S.seats.forEach((s, i) => {
      const b = map.children[i];
      const tier = Math.min(prices.indexOf(s.price), 3);
      const free = s.status === 'AVAILABLE';
      if (free) available++;
      if (s.status === 'HELD') held++;
      b.className = `seat tier-${tier} ${s.status.toLowerCase()}`;
      b.dataset.status = s.status;
      b.disabled = !free;
      const selected = free && S.selectedSeats.includes(s.seatNo);
      b.classList.toggle('selected', selected);
      b.setAttribute('aria-pressed', String(selected));
      const what = free ? pts(s.price) : s.status === 'SOLD' ? 'sold' : 'on hold for someone else';
      b.setAttribute('aria-label', `Seat ${s.seatNo}, ${what}`);
      b.title = `Seat ${s.seatNo} · ${free ? pts(s.price) : s.status === 'SOLD' ? 'Sold' : 'Held'}`;
    });

    // A seat someone picked was taken by somebody else meanwhile.
    if (S.selectedSeats.length) {
      const gone = S.selectedSeats.filter((no) => {
        const s = S.seats.find((x) => x.seatNo === no);
        return !s || s.status !== 'AVAILABLE';
      });
      if (gone.length) {
        S.selectedSeats = S.selectedSeats.filter((no) => !gone.includes(no));
        const rest = S.selectedSeats.length
          ? ` ${seatWords(S.selectedSeats, true)} ${S.selectedSeats.length === 1 ? 'is' : 'are'} still picked.`
          : '';
        showSeatTaken(`${seatWords(gone, true)} ${gone.length === 1 ? 'was' : 'were'} just taken by someone else. Please pick ${gone.length === 1 ? 'another seat' : 'other seats'}.${rest}`);
        renderSelection();
      }
    }

    // Roving tab stop: one seat in the tab order, arrow keys move between seats.
    let stop = [S.focusSeat, ...S.selectedSeats].find((n) => n != null && seatButton(n) && !seatButton(n).disabled);
    if (stop == null) {
      const first = S.seats.find((x) => x.status === 'AVAILABLE');
      stop = first ? first.seatNo : null;
    }
    S.focusSeat = stop;
    for (const b of map.children) b.tabIndex = Number(b.dataset.seat) === stop ? 0 : -1;
    if (hadFocus && (focusedNo == null || seatButton(focusedNo).disabled) && stop != null) {
      seatButton(stop).focus();
    }

    // Keep the date's count in step with the map.
    const sched = S.schedules.find((x) => x.scheduleId === S.scheduleId);
    if (sched && sched.availableSeats !== available) {
      sched.availableSeats = available;
      const left = el(`date-left-${sched.scheduleId}`);
      if (left) {
        left.textContent = seatsLeft(available, sched.seatCount);
        left.parentElement.classList.toggle('soldout', available === 0);
        left.parentElement.setAttribute('aria-label', `${fmtDate(sched.startsAt)}, ${left.textContent}`);
      }
    }

    if (available === 0) {
      const others = S.schedules.some((x) => x.scheduleId !== S.scheduleId && x.availableSeats > 0);
      const base = held > 0
        ? 'Every seat on this date is sold or on hold right now. Held seats go back on sale if they are not paid for in time, so check back shortly'
        : 'This date is sold out';
      showMsg('soldout-msg', `${base}${others ? ' — or pick another date above.' : '. Every other date is sold out too.'}`);
    } else {
      showMsg('soldout-msg', '');
    }

    renderLegend(prices);
    setText('seats-updated', `${available} available · updated ${new Date().toLocaleTimeString()}`);
  }

  function renderLegend(prices) {
    const lg = el('legend');
    const key = prices.join(',');
    if (lg.dataset.key === key) return;
    lg.dataset.key = key;
    lg.textContent = '';
    const item = (cls, text) => {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = `swatch seat ${cls}`;
      sw.setAttribute('aria-hidden', 'true');
      li.append(sw, document.createTextNode(text));
      lg.appendChild(li);
    };
    prices.forEach((p, i) => item(`tier-${Math.min(i, 3)}`, pts(p)));
    item('held', 'On hold');
    item('sold', 'Sold');
  }

  function seatButton(no) {
    return el('seat-map').querySelector(`[data-seat="${no}"]`);
  }

  function showSeatTaken(text) {
    showMsg('released-msg', '');
    showMsg('seat-taken-msg', text);
  }

  // Picks or unpicks a seat; at most S.maxSeats of one date.
  function pickSeat(no) {
    const s = S.seats.find((x) => x.seatNo === no);
    if (!s || s.status !== 'AVAILABLE') return;
    S.focusSeat = no;
    showMsg('seat-taken-msg', '');
    showMsg('hold-expired-msg', '');
    showMsg('released-msg', '');
    hideHoldLimit();
    let said;
    if (S.selectedSeats.includes(no)) {
      S.selectedSeats = S.selectedSeats.filter((x) => x !== no);
      setText('seat-limit-msg', '');
      said = `Seat ${no} unpicked.`;
    } else if (S.selectedSeats.length >= S.maxSeats) {
      setText('seat-limit-msg', `You can hold up to ${S.maxSeats} seats in one order. Unpick a seat first to pick seat ${no}.`);
      return;
    } else {
      S.selectedSeats = S.selectedSeats.concat(no);
      setText('seat-limit-msg', '');
      said = `Seat ${no} picked.`;
    }
    renderSeats();
    renderSelection();
    const n = S.selectedSeats.length;
    setText('seat-announce', n ? `${said} ${n} of ${S.maxSeats} picked: ${selectionSummary()}.` : `${said} No seats picked.`);
  }

  function clearSeats() {
    S.selectedSeats = [];
    setText('seat-limit-msg', '');
    renderSeats();
    renderSelection();
    setText('seat-announce', 'No seats picked.');
    const stop = S.focusSeat != null ? seatButton(S.focusSeat) : null;
    if (stop && !stop.disabled) stop.focus();
  }

  function pickedSeats() {
    return S.selectedSeats.map((no) => S.seats.find((x) => x.seatNo === no)).filter(Boolean).sort((a, b) => a.seatNo - b.seatNo);
  }

  function selectionSummary() {
    const list = pickedSeats();
    const total = list.reduce((a, s) => a + s.price, 0);
    const sched = S.schedules.find((x) => x.scheduleId === S.scheduleId);
    const what = list.length === 1 ? `Seat ${list[0].seatNo} · ${pts(total)}` : `${seatShort(list.map((s) => s.seatNo))} · ${pts(total)} in total`;
    return `${what}${sched ? ' · ' + fmtDate(sched.startsAt) : ''}`;
  }

  function renderSelection() {
    const box = el('selection');
    const list = pickedSeats();
    if (!list.length) { box.hidden = true; return; }
    setText('selection-text', selectionSummary());
    if (!S.busy) el('hold-btn').textContent = list.length === 1 ? `Hold seat ${list[0].seatNo}` : `Hold these ${list.length} seats`;
    el('clear-btn').hidden = list.length < 2;
    box.hidden = false;
  }

  function hideHoldLimit() {
    S.heldElsewhere = null;
    el('hold-limit-msg').hidden = true;
  }

  function moveSeatFocus(from, key) {
    const n = S.seats.length;
    let step;
    if (key === 'ArrowRight') step = 1;
    else if (key === 'ArrowLeft') step = -1;
    else if (key === 'ArrowDown') step = SEAT_COLUMNS;
    else if (key === 'ArrowUp') step = -SEAT_COLUMNS;
    let i = S.seats.findIndex((x) => x.seatNo === from);
    if (key === 'Home' || key === 'End') {
      const order = key === 'Home' ? S.seats : S.seats.slice().reverse();
      const t = order.find((x) => x.status === 'AVAILABLE');
      return t ? t.seatNo : null;
    }
    for (i += step; i >= 0 && i < n; i += step) {
      if (S.seats[i].status === 'AVAILABLE') return S.seats[i].seatNo;
    }
    return null;
  }

  async function hold() {
    if (S.busy || !S.selectedSeats.length) return;
    const seatNos = S.selectedSeats.slice().sort(bySeat);
    const scheduleId = S.scheduleId;
    const btn = el('hold-btn');
    S.busy = true;
    btn.disabled = true;
    btn.textContent = `Holding ${seatWords(seatNos)}…`;
    clearError();
    hideHoldLimit();
    setText('seat-limit-msg', '');
    const t0 = Date.now();
    // One seat as before ({seatNo}); several together ({seatNos}): all or nothing.
    const body = seatNos.length === 1 ? { scheduleId, seatNo: seatNos[0] } : { scheduleId, seatNos };
    try {
      // 201: held now; 200: these very seats were already held by this person (the same hold again).
      const { data, status } = await api('POST', '/reservations', { token: S.token, body });
      const created = Date.parse(data.createdAt);
      if (status === 201 && Number.isFinite(created)) S.skewMs = created - (t0 + Date.now()) / 2;
      const sched = S.schedules.find((x) => x.scheduleId === scheduleId);
      S.hold = Object.assign({ seatNos }, data, { scheduleId, startsAt: sched ? sched.startsAt : null });
      S.payKey = null;
      S.selectedSeats = [];
      saveSession();
      enterCheckout();
    } catch (e) {
      if (e.code === 'SEAT_UNAVAILABLE') {
        // Nothing was held. `seats` names the taken ones; the others stay picked.
        const named = Array.isArray(e.body.seats) ? e.body.seats.map(Number).filter((n) => seatNos.includes(n)) : [];
        const taken = named.length ? named : seatNos;
        S.selectedSeats = S.selectedSeats.filter((no) => !taken.includes(no));
        renderSelection();
        const rest = S.selectedSeats.slice().sort(bySeat);
        let text;
        if (seatNos.length === 1) {
          text = `Sorry — seat ${seatNos[0]} was just taken by someone else. Please pick another seat.`;
        } else {
          text = `Sorry — ${seatWords(taken)} ${taken.length === 1 ? 'was' : 'were'} just taken by someone else, so none of your seats were held.`;
          text += rest.length
            ? ` ${seatWords(rest, true)} ${rest.length === 1 ? 'is' : 'are'} still picked: pick ${taken.length === 1 ? 'another seat' : 'other seats'} to go with ${rest.length === 1 ? 'it' : 'them'}, or press Hold again.`
            : ' Please pick other seats.';
        }
        showSeatTaken(text);
        await loadSeats();
        const stop = S.focusSeat != null ? seatButton(S.focusSeat) : null;
        if (stop && !stop.disabled) stop.focus();
      } else if (e.code === 'HOLD_LIMIT') {
        await showHoldLimit(e);
      } else if (e.code === 'INVALID_SEAT_NO' && /1 to (\d+) seats/.test(e.message)) {
        // This server allows fewer seats per order than we thought.
        S.maxSeats = Math.max(1, Number(/1 to (\d+) seats/.exec(e.message)[1]));
        setText('max-seats', String(S.maxSeats));
        setText('seat-limit-msg', `This box office sells at most ${S.maxSeats} seat${S.maxSeats === 1 ? '' : 's'} in one order. Unpick ${seatNos.length - S.maxSeats === 1 ? 'a seat' : 'some seats'} and try again.`);
      } else if (!handleTokenError(e)) {
        showError(`Couldn't hold ${seatWords(seatNos)}: ${e.message}`);
      }
    } finally {
      S.busy = false;
      btn.disabled = false;
      renderSelection();
    }
  }

  // HOLD_LIMIT: this person already holds other seats (another tab, or a hold from before a
  // reload). Find that hold and offer to go to it.
  async function showHoldLimit(e) {
    let live = null;
    const token = S.token || proofFor(S.userId);
    try {
      const { data } = await api('GET', '/me/reservations', { token });
      live = (data.reservations || []).find((r) => r.status === 'HELD' && Date.parse(r.expiresAt) > serverNow()) || null;
    } catch (_) { /* the server's own words below */ }
    const box = el('hold-limit-msg');
    const open = el('hold-limit-open');
    // A hold for another concert cannot be paid in this concert's turn: point to My tickets.
    const here = live && S.schedules.some((x) => x.scheduleId === live.scheduleId);
    const info = live && !here ? scheduleInfo(live.scheduleId) : null;
    const it = live && holdSeats(live).length === 1 ? 'it' : 'them';
    let text;
    if (!live) {
      text = `You already hold other seats. Pay for them or release them before holding different seats.${e.message ? ` (${e.message})` : ''}`;
    } else if (here) {
      text = `You already hold ${seatWords(holdSeats(live))}${live.scheduleId !== S.scheduleId ? ' of another date' : ''}. Pay for ${it} or release ${it} before holding different seats.`;
    } else {
      text = `You already hold ${seatWords(holdSeats(live))} for ${info ? info.title : 'another concert'}. One hold at a time: release ${it} in My tickets (or pay for ${it} in that concert's line) before holding seats here.`;
    }
    box.querySelector('.banner-text').textContent = text;
    S.heldElsewhere = here ? live : null;
    open.hidden = !live;
    open.dataset.action = here ? 'open-held' : 'tickets';
    open.textContent = here ? 'Go to my held seats' : 'Open my tickets';
    box.hidden = false;
  }

  function openHeld() {
    const r = S.heldElsewhere;
    if (!r) return;
    hideHoldLimit();
    const info = scheduleInfo(r.scheduleId);
    const sched = S.schedules.find((x) => x.scheduleId === r.scheduleId);
    S.hold = Object.assign({}, r, { startsAt: sched ? sched.startsAt : info ? info.startsAt : null });
    S.scheduleId = r.scheduleId;
    S.payKey = null;
    saveSession();
    enterCheckout();
  }

  // ---------------------------------------------------------------- 4. checkout

  function enterCheckout() {
    show('checkout');
    const h = S.hold;
    const nos = holdSeats(h);
    const many = nos.length > 1;
    S.holdWarned = false;
    setText('checkout-title', many ? `Your ${nos.length} seats are held` : 'Your seat is held');
    setText('hold-hint', many
      ? 'Pay before the timer runs out, or the seats go back on sale. One payment pays for all of them.'
      : 'Pay before the timer runs out, or the seat goes back on sale.');
    const sum = el('hold-summary');
    sum.textContent = '';
    const seat = document.createElement('span');
    seat.className = 'hold-seat';
    seat.textContent = seatShort(nos);
    const detail = document.createElement('span');
    detail.className = 'hold-detail';
    detail.textContent = `${h.startsAt ? fmtDate(h.startsAt) + ' · ' : ''}${pts(h.price)}${many ? ' in total' : ''}`;
    sum.append(seat, detail);
    if (many && Array.isArray(h.seats)) {
      const ul = document.createElement('ul');
      ul.className = 'hold-seats';
      ul.dataset.testid = 'hold-seat-list';
      for (const x of h.seats.slice().sort((a, b) => a.seatNo - b.seatNo)) {
        const li = document.createElement('li');
        const a = document.createElement('span');
        a.textContent = `Seat ${x.seatNo}`;
        const b = document.createElement('span');
        b.textContent = pts(x.price);
        li.append(a, b);
        ul.appendChild(li);
      }
      sum.appendChild(ul);
    }
    setText('hold-announce', '');
    showMsg('pay-error', '');
    setText('charge-msg', '');
    el('pay-btn').textContent = `Pay ${pts(h.price)}`;
    el('release-btn').textContent = many ? `Release these ${nos.length} seats` : 'Release this seat';
    el('release-btn').disabled = false;
    setText('release-hint', `${many ? 'They go' : 'It goes'} back on sale at once, and you can pick again while your turn lasts.`);
    S.balance = null;
    el('charge-amount').value = '';
    renderBalance();
    loadBalance();
    tick();
  }

  async function loadBalance() {
    try {
      const { data } = await api('GET', `/users/${S.userId}/points`);
      S.balance = data.balance;
    } catch (e) {
      S.balance = null;
      setText('charge-msg', `Couldn't load your balance: ${e.message}`);
    }
    renderBalance(true);
  }

  function renderBalance(prefill) {
    setText('balance', S.balance == null ? '…' : pts(S.balance));
    const price = S.hold ? S.hold.price : 0;
    const short = S.balance == null ? 0 : Math.max(0, price - S.balance);
    const sf = el('shortfall');
    if (short > 0) {
      sf.textContent = `You need ${pts(short)} more to pay for ${holdSeats(S.hold).length > 1 ? 'these seats' : 'this seat'}. Add points below (points are free in this demo).`;
      sf.hidden = false;
    } else {
      sf.hidden = true;
    }
    const amount = el('charge-amount');
    if (prefill && !amount.value) amount.value = String(short > 0 ? short : 100000);
    el('pay-btn').disabled = S.busy || (S.balance != null && short > 0);
  }

  async function charge(ev) {
    ev.preventDefault();
    const input = el('charge-amount');
    const v = input.value.trim().replace(/[,\s_]/g, '');
    if (!/^[0-9]+$/.test(v) || Number(v) < 1) {
      setText('charge-msg', 'Type a whole number of points, such as 100000.');
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    const btn = el('charge-btn');
    btn.disabled = true;
    // The same amount pressed again after a failure reuses the key, so a retry never charges twice.
    if (!S.chargeKey || S.chargeKey.amount !== Number(v)) S.chargeKey = { amount: Number(v), key: newKey() };
    try {
      const { data } = await api('POST', `/users/${S.userId}/points/charge`, {
        body: { amount: Number(v) },
        headers: { 'Idempotency-Key': S.chargeKey.key },
      });
      S.chargeKey = null;
      S.balance = data.balance;
      input.value = '';
      setText('charge-msg', `Added ${pts(Number(v))}. Your balance is now ${pts(data.balance)}.`);
      showMsg('pay-error', '');
      renderBalance(false);
    } catch (e) {
      setText('charge-msg', `Couldn't add points: ${e.message}`);
    } finally {
      btn.disabled = false;
    }
  }

  async function pay() {
    if (S.busy || !S.hold) return;
    const h = S.hold;
    if (!S.payKey) { S.payKey = newKey(); saveSession(); } // one key per reservation: a retry is safe
    const btn = el('pay-btn');
    S.busy = true;
    btn.disabled = true;
    btn.textContent = 'Paying…';
    showMsg('pay-error', '');
    clearError();
    try {
      const { data } = await api('POST', '/payments', {
        token: S.token,
        body: { reservationId: h.reservationId },
        headers: { 'Idempotency-Key': S.payKey },
      });
      finish(h, data);
      return;
    } catch (e) {
      if (e.code === 'INSUFFICIENT_POINTS') {
        showMsg('pay-error', 'You do not have enough points yet. Add points above, then press Pay again.');
        await loadBalance();
      } else if (e.code === 'HOLD_EXPIRED') {
        holdExpired();
      } else if (e.code === 'ALREADY_PAID') {
        finish(h, null);
        return;
      } else if (!handleTokenError(e)) {
        showMsg('pay-error', e.status === 0 || e.status >= 500
          ? "We couldn't confirm your payment. Press Pay again — you will not be charged twice."
          : `Payment failed: ${e.message}`);
      }
    } finally {
      S.busy = false;
      if (S.view === 'checkout' && S.hold) {
        btn.textContent = `Pay ${pts(S.hold.price)}`;
        renderBalance(false);
      }
    }
  }

  function finish(h, payment) {
    S.hold = null;
    S.payKey = null;
    S.token = null;
    saveSession();
    const nos = holdSeats(h);
    setText('confirm-concert', `${S.concert.title} · ${S.concert.venue}`);
    setText('confirm-date', h.startsAt ? fmtDate(h.startsAt) : '–');
    setText('confirm-seat-label', nos.length > 1 ? 'Seats' : 'Seat');
    setText('confirm-seat', seatShort(nos));
    setText('confirm-amount', pts(payment ? payment.amount : h.price));
    setText('confirm-payment', payment ? `#${payment.paymentId}` : 'already paid');
    setText('confirm-balance', payment ? pts(payment.balance) : '–');
    show('done');
  }

  function holdExpired() {
    const nos = holdSeats(S.hold);
    S.hold = null;
    S.payKey = null;
    saveSession();
    enterBooking(nos.length > 1
      ? `Your hold on ${seatWords(nos)} ran out before payment, so the seats went back on sale. Please pick seats again.`
      : `Your hold on seat ${nos[0]} ran out before payment, so the seat went back on sale. Please pick a seat again.`);
  }

  // Let go of the hold: the seats are on sale again at once; back to the map, same date.
  async function releaseHold() {
    if (S.busy || !S.hold) return;
    const h = S.hold;
    const nos = holdSeats(h);
    const btn = el('release-btn');
    S.busy = true;
    btn.disabled = true;
    el('pay-btn').disabled = true;
    btn.textContent = 'Releasing…';
    showMsg('pay-error', '');
    clearError();
    try {
      await api('POST', `/reservations/${h.reservationId}/release`, { token: S.token || proofFor(S.userId) });
      S.hold = null;
      S.payKey = null;
      S.scheduleId = h.scheduleId;
      saveSession();
      S.busy = false;
      enterBooking(null, `You let go of ${seatWords(nos)}. ${nos.length > 1 ? 'They are' : 'It is'} on sale again. Pick again below, while your turn lasts.`);
      return;
    } catch (e) {
      if (e.code === 'ALREADY_PAID') {
        S.busy = false;
        finish(h, null);
        return;
      }
      if (!handleTokenError(e)) showMsg('pay-error', `Couldn't release ${seatWords(nos)}: ${e.message}`);
    } finally {
      S.busy = false;
      if (S.view === 'checkout' && S.hold) {
        btn.disabled = false;
        btn.textContent = nos.length > 1 ? `Release these ${nos.length} seats` : 'Release this seat';
        renderBalance(false);
      }
    }
  }

  // ---------------------------------------------------------------- leave the line

  function askLeave(opener) {
    if (!S.token) return;
    const d = el('leave-dialog');
    S.leaveOpener = opener || null;
    let text;
    if (S.view === 'queue') text = 'You give up your place in line. If you change your mind you join again at the back.';
    else if (S.view === 'checkout' && S.hold) text = `Your turn ends now and ${seatWords(holdSeats(S.hold))} ${holdSeats(S.hold).length > 1 ? 'go' : 'goes'} back on sale. The next person in line gets your turn.`;
    else text = 'Your turn ends now and passes to the next person in line. To buy later you join again at the back.';
    setText('leave-text', text);
    el('leave-confirm').disabled = false;
    if (typeof d.showModal === 'function') d.showModal(); else d.setAttribute('open', '');
    el('leave-cancel').focus();
  }

  function closeLeave(refocus = true) {
    const d = el('leave-dialog');
    if (d.open) { if (typeof d.close === 'function') d.close(); else d.removeAttribute('open'); }
    if (refocus && S.leaveOpener && S.leaveOpener.isConnected && !S.leaveOpener.closest('[hidden]')) S.leaveOpener.focus();
    S.leaveOpener = null;
  }

  async function leaveLine() {
    const token = S.token;
    if (!token || S.busy) return;
    const from = S.view;
    const held = S.hold;
    S.busy = true;
    el('leave-confirm').disabled = true;
    // Stop listening first, so the EXPIRED that follows is not taken for a dropped turn.
    stopWatching();
    stopSeatRefresh();
    clearError();
    try {
      if (held) {
        try {
          await api('POST', `/reservations/${held.reservationId}/release`, { token });
        } catch (e) {
          if (e.code === 'ALREADY_PAID') { closeLeave(false); S.busy = false; finish(held, null); return; }
          // Otherwise the hold lapses on its own; leaving matters more.
        }
        S.hold = null;
        S.payKey = null;
      }
      await api('POST', '/queue/leave', { token });
      S.token = null;
      saveSession();
      closeLeave(false);
      S.busy = false;
      const title = S.concert ? S.concert.title : 'the concert';
      show('concerts');
      showMsg('left-msg', `You left the line for ${title}${held ? ` and let go of ${seatWords(holdSeats(held))}` : ''}. Join again whenever you like.`);
      loadConcerts();
    } catch (e) {
      closeLeave();
      S.busy = false;
      if (e.status === 401) {
        tokenEnded(e.code);
      } else {
        showError(e.code === 'ROUTE_NOT_FOUND' || e.status === 405
          ? "This box office can't take you out of the line yet. If you close the page, your place lapses on its own."
          : `Couldn't leave the line: ${e.message}`);
        // Carry on where the person was.
        if (from === 'queue' && S.view === 'queue') startWatching();
        else if (from === 'checkout' && held && !S.hold) enterBooking(null, `You let go of ${seatWords(holdSeats(held))}.`);
        else if (S.view === 'booking') startSeatRefresh();
      }
    } finally {
      S.busy = false;
      el('leave-confirm').disabled = false;
    }
  }

  // ---------------------------------------------------------------- my tickets

  const STATUS_WORDS = { HELD: 'On hold', CONFIRMED: 'Confirmed', EXPIRED: 'Expired', RELEASED: 'Released' };

  function openTickets() {
    let userId = S.userId;
    if (S.view === 'concerts' || userId == null) {
      const typed = el('user-id').value.trim();
      if (typed || userId == null) {
        userId = readUserId();
        if (userId == null) return;
      }
    }
    if (S.view !== 'tickets') S.ticketsBack = S.view;
    S.ticketsUser = userId;
    clearError();
    show('tickets');
    loadTickets();
  }

  async function loadTickets() {
    const userId = S.ticketsUser;
    const list = el('tickets-list');
    setText('tickets-user', `User ${userId}`);
    const token = (S.userId === userId && S.token) || proofFor(userId);
    if (!token) {
      list.textContent = '';
      setText('tickets-status', `Nothing to show for user ${userId} on this device yet. Join the waiting room for a concert; your holds and tickets then show up here.`);
      return;
    }
    setText('tickets-status', 'Loading your tickets…');
    try {
      const { data } = await api('GET', '/me/reservations', { token });
      if (S.view !== 'tickets' || S.ticketsUser !== userId) return;
      S.tickets = data.reservations || [];
      renderTickets();
    } catch (e) {
      list.textContent = '';
      setText('tickets-status', e.status === 401
        ? `This device's pass for user ${userId} is no longer recognised (the box office may have restarted). Join the waiting room again to see your tickets.`
        : `Couldn't load your tickets: ${e.message}`);
    }
  }

  function renderTickets() {
    const list = el('tickets-list');
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    list.textContent = '';
    const n = S.tickets.length;
    const held = S.tickets.filter((r) => r.status === 'HELD').length;
    const paid = S.tickets.filter((r) => r.status === 'CONFIRMED').length;
    setText('tickets-status', n
      ? `${n} ${n === 1 ? 'reservation' : 'reservations'}: ${paid} confirmed${held ? `, ${held} on hold` : ''}.`
      : 'No holds or tickets yet.');
    for (const r of S.tickets) {
      const nos = holdSeats(r);
      const li = document.createElement('li');
      li.className = 'card ticket-row';
      li.dataset.testid = `ticket-${r.reservationId}`;
      li.dataset.status = r.status;
      const head = document.createElement('div');
      head.className = 'ticket-head';
      const h = document.createElement('h2');
      h.textContent = seatShort(nos);
      const badge = document.createElement('span');
      badge.className = `badge ${r.status.toLowerCase()}`;
      badge.dataset.testid = `ticket-status-${r.reservationId}`;
      badge.textContent = STATUS_WORDS[r.status] || r.status;
      head.append(h, badge);
      const info = scheduleInfo(r.scheduleId);
      const where = document.createElement('p');
      where.className = 'ticket-where';
      where.textContent = info ? `${info.title} · ${fmtDate(info.startsAt)}` : `Date #${r.scheduleId}`;
      const dl = document.createElement('dl');
      const row = (dt, dd, id) => {
        const a = document.createElement('dt');
        a.textContent = dt;
        const b = document.createElement('dd');
        b.textContent = dd;
        if (id) b.dataset.testid = id;
        dl.append(a, b);
        return b;
      };
      row(nos.length > 1 ? 'Seats' : 'Seat', nos.join(', '), `ticket-seats-${r.reservationId}`);
      row(r.status === 'CONFIRMED' ? 'Paid' : 'Total', pts(r.price), `ticket-total-${r.reservationId}`);
      if (r.status === 'HELD') {
        const until = new Date(r.expiresAt);
        const dd = row('Held until', '', `ticket-countdown-${r.reservationId}`);
        dd.className = 'countdown';
        dd.dataset.until = String(until.getTime());
        dd.dataset.clock = until.toLocaleTimeString();
        updateTicketCountdown(dd, serverNow());
      } else if (r.status === 'CONFIRMED' && r.paymentId != null) {
        row('Payment', `#${r.paymentId}`);
      }
      li.append(head, where, dl);
      if (r.status === 'HELD') {
        const b = document.createElement('button');
        b.type = 'button';
        b.dataset.testid = `ticket-release-${r.reservationId}`;
        b.dataset.action = 'ticket-release';
        b.dataset.reservation = String(r.reservationId);
        b.textContent = 'Release';
        b.setAttribute('aria-label', `Release ${seatWords(nos)}`);
        li.appendChild(b);
      }
      list.appendChild(li);
    }
    if (focused) {
      const again = list.querySelector(`[data-testid="${focused}"]`);
      if (again) again.focus(); else el('tickets-back').focus();
    }
  }

  function updateTicketCountdown(dd, now) {
    const left = Number(dd.dataset.until) - now;
    setTextNode(dd, left > 0 ? `${dd.dataset.clock} (${fmtClock(left)} left)` : `${dd.dataset.clock} (time is up)`);
    if (left <= 0) {
      const li = dd.closest('li');
      const badge = li && li.querySelector('.badge');
      if (badge && badge.textContent !== STATUS_WORDS.EXPIRED) {
        badge.textContent = STATUS_WORDS.EXPIRED;
        badge.className = 'badge expired';
        const b = li.querySelector('[data-action="ticket-release"]');
        if (b) b.remove();
      }
    }
  }
  function setTextNode(n, text) {
    if (n.textContent !== text) n.textContent = text;
  }

  async function ticketRelease(btn) {
    const id = Number(btn.dataset.reservation);
    const userId = S.ticketsUser;
    const token = (S.userId === userId && S.token) || proofFor(userId);
    btn.disabled = true;
    btn.textContent = 'Releasing…';
    try {
      const { data } = await api('POST', `/reservations/${id}/release`, { token });
      if (S.hold && S.hold.reservationId === id) { S.hold = null; S.payKey = null; saveSession(); }
      const nos = holdSeats(data);
      setText('tickets-status', data.status === 'RELEASED'
        ? `You let go of ${seatWords(nos)}. ${nos.length > 1 ? 'They are' : 'It is'} on sale again.`
        : `The hold on ${seatWords(nos)} had already ended (${(STATUS_WORDS[data.status] || data.status).toLowerCase()}).`);
      const i = S.tickets.findIndex((r) => r.reservationId === id);
      if (i >= 0) S.tickets[i] = data;
      const status = el('tickets-status').textContent;
      renderTickets();
      setText('tickets-status', status);
      el('tickets-back').focus();
    } catch (e) {
      btn.disabled = false;
      btn.textContent = 'Release';
      if (e.code === 'ALREADY_PAID') { loadTickets(); return; }
      setText('tickets-status', `Couldn't release: ${e.message}`);
    }
  }

  async function ticketsBack() {
    const back = S.ticketsBack;
    S.ticketsBack = null;
    if (back === 'done' || back === 'ended' || back === 'closed') { show(back); return; }
    if (back === 'queue' && S.token && (S.es || S.pollTimer)) {
      show('queue'); // still watched in the background, and up to date
      if (S.lastStanding) renderQueue(S.lastStanding);
      return;
    }
    if (S.token && (back === 'queue' || back === 'booking' || back === 'checkout')) {
      if (back === 'checkout' && S.hold) { enterCheckout(); return; }
      try {
        const { data } = await api('GET', '/queue/status', { token: S.token });
        onStatus(data, true);
      } catch (e) {
        if (e.status === 401) tokenEnded(e.code);
        else { show('concerts'); loadConcerts(); showError(`Couldn't reach the box office: ${e.message}`); }
      }
      return;
    }
    show('concerts');
    if (!S.concerts.length) loadConcerts();
  }

  // ---------------------------------------------------------------- clocks

  function tick() {
    const now = serverNow();
    if (S.view === 'queue' && S.preQueue) tickPreQueue();
    if ((S.view === 'booking' || S.view === 'checkout') && S.activeUntil) {
      const left = S.activeUntil - now;
      setText('active-remaining', fmtClock(left));
      if (left <= 0) checkEnded();
    }
    if (S.view === 'tickets') {
      for (const dd of el('tickets-list').querySelectorAll('.countdown')) updateTicketCountdown(dd, now);
    }
    if (S.view === 'checkout' && S.hold) {
      const left = Date.parse(S.hold.expiresAt) - now;
      const c = el('hold-countdown');
      setText('hold-countdown', fmtClock(left));
      c.classList.toggle('urgent', left < 60000);
      if (left < 60000 && left > 0 && !S.holdWarned) {
        S.holdWarned = true;
        setText('hold-announce', 'Less than one minute left to pay.');
      }
      if (left <= 0 && !S.busy) holdExpired();
    }
  }

  // The active window ran out on the clock: ask the server before telling the person.
  async function checkEnded() {
    if (S.checkingEnd || !S.token) return;
    S.checkingEnd = true;
    try {
      const { data } = await api('GET', '/queue/status', { token: S.token });
      if (data.status === 'ACTIVE' && data.activeUntil) S.activeUntil = Date.parse(data.activeUntil);
      else if (data.status === 'EXPIRED') tokenEnded('EXPIRED');
      else if (LINE_ENDED[data.status]) tokenEnded(data.status);
    } catch (e) {
      if (e.status === 401) tokenEnded(e.code);
    } finally {
      setTimeout(() => { S.checkingEnd = false; }, 3000);
    }
  }

  // ---------------------------------------------------------------- wiring

  function goHome() {
    showMsg('left-msg', '');
    stopWatching();
    stopSeatRefresh();
    S.hold = null;
    S.payKey = null;
    S.scheduleId = null;
    saveSession();
    show('concerts');
    loadConcerts();
  }

  document.addEventListener('click', (ev) => {
    const t = ev.target.closest('[data-action]');
    if (t) {
      const a = t.dataset.action;
      if (a === 'hold') hold();
      else if (a === 'pay') pay();
      else if (a === 'release') releaseHold();
      else if (a === 'clear-seats') clearSeats();
      else if (a === 'open-held') openHeld();
      else if (a === 'leave') askLeave(t);
      else if (a === 'leave-confirm') leaveLine();
      else if (a === 'leave-cancel') closeLeave();
      else if (a === 'tickets') openTickets();
      else if (a === 'tickets-back') ticketsBack();
      else if (a === 'tickets-refresh') loadTickets();
      else if (a === 'ticket-release') ticketRelease(t);
      else if (a === 'rejoin') rejoin();
      else if (a === 'home') { S.token = null; goHome(); }
      else if (a === 'dismiss-error') clearError();
      return;
    }
    const seat = ev.target.closest('.seats .seat');
    if (seat && !seat.disabled) pickSeat(Number(seat.dataset.seat));
  });

  el('seat-map').addEventListener('keydown', (ev) => {
    const b = ev.target.closest('.seat');
    if (!b) return;
    const keys = ['ArrowRight', 'ArrowLeft', 'ArrowUp', 'ArrowDown', 'Home', 'End'];
    if (!keys.includes(ev.key)) return;
    ev.preventDefault();
    const to = moveSeatFocus(Number(b.dataset.seat), ev.key);
    if (to == null) return;
    S.focusSeat = to;
    for (const x of el('seat-map').children) x.tabIndex = Number(x.dataset.seat) === to ? 0 : -1;
    seatButton(to).focus();
  });

  el('user-id').addEventListener('keydown', (ev) => {
    // Enter in the field joins the only (or first) concert.
    if (ev.key === 'Enter' && S.concerts.length) {
      ev.preventDefault();
      join(S.concerts[0], el(`join-${S.concerts[0].concertId}`));
    }
  });

  el('user-id').addEventListener('input', () => {
    el('user-id-error').hidden = true;
    el('user-id').removeAttribute('aria-invalid');
  });

  el('charge-form').addEventListener('submit', charge);

  // Escape (or the browser's own close) on the leave dialog: stay in line.
  el('leave-dialog').addEventListener('cancel', (ev) => { ev.preventDefault(); closeLeave(); });

  document.querySelector('.brand').addEventListener('click', (ev) => {
    ev.preventDefault();
    if (S.view === 'checkout' && !window.confirm('Leave this page? Your seat stays held until its timer runs out.')) return;
    goHome();
  });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.view === 'booking') loadSeats();
  });

  setInterval(tick, 250);

  // ---------------------------------------------------------------- start

  async function resume() {
    const saved = loadSession();
    try {
      const u = localStorage.getItem(USER_KEY);
      if (u) el('user-id').value = u;
    } catch (_) { /* ignore */ }
    if (!saved || !saved.token || !saved.concert) { show('concerts', { focus: false }); loadConcerts(); return; }
    S.userId = saved.userId;
    S.concert = saved.concert;
    S.token = saved.token;
    S.startPos = saved.startPos;
    try {
      const { data } = await api('GET', '/queue/status', { token: S.token });
      if (data.activeUntil) S.activeUntil = Date.parse(data.activeUntil);
      if (data.status === 'ACTIVE' && saved.hold && Date.parse(saved.hold.expiresAt) > serverNow()) {
        try {
          const { data: r } = await api('GET', `/reservations/${saved.hold.reservationId}`, { token: S.token });
          if (r.status === 'HELD') {
            S.hold = Object.assign({}, saved.hold, { expiresAt: r.expiresAt });
            S.payKey = saved.payKey || null;
            S.scheduleId = saved.hold.scheduleId;
            enterCheckout();
            return;
          }
        } catch (_) { /* fall through to the seat map */ }
      }
      if (data.status === 'EXPIRED') throw new ApiError(401, { code: 'TOKEN_EXPIRED' });
      onStatus(data, true);
    } catch (_) {
      S.token = null;
      saveSession();
      show('concerts', { focus: false });
      loadConcerts();
    }
  }

  resume();
})();
