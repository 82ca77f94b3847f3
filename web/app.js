// boxoffice pages: concerts → waiting room → date and seat → hold, points, pay → confirmation.
// Plain browser JavaScript, no build step. Talks to the JSON API under /api/v1.
'use strict';

(() => {
  const API = '/api/v1';
  const SEAT_REFRESH_MS = 2000;
  const SCHEDULE_REFRESH_MS = 10000;
  const SEAT_COLUMNS = 10;
  const SESSION_KEY = 'boxoffice.session';
  const USER_KEY = 'boxoffice.user';

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
    selectedSeat: null,
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
    if (S.userId && S.concert && view !== 'concerts') {
      who.textContent = `User ${S.userId} · ${S.concert.title}`;
      who.hidden = false;
    } else {
      who.hidden = true;
    }
    if (view !== 'queue') stopWatching();
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
    else if (S.view === 'checkout') document.title = `Seat held — pay now — ${base}`;
    else if (S.view === 'done') document.title = `Booked — ${base}`;
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
      if (e.code === 'USER_NOT_FOUND' || e.code === 'INVALID_ID' || e.status === 422) {
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
    S.hold = null;
    S.payKey = null;
    S.startPos = null;
    S.announcedPos = null;
    saveSession();
    onStatus(data, true);
  }

  // ---------------------------------------------------------------- 2. waiting room

  // One place that reacts to a standing, wherever it came from (join, events, polling).
  function onStatus(st, fromJoin) {
    if (st.activeUntil) S.activeUntil = Date.parse(st.activeUntil);
    if (st.status === 'WAITING') {
      if (S.view !== 'queue') {
        S.startPos = Math.max(S.startPos || 0, st.position || 0);
        show('queue');
        renderQueue(st);
        startWatching();
      } else {
        renderQueue(st);
      }
    } else if (st.status === 'ACTIVE') {
      stopWatching();
      if (S.view === 'queue' || fromJoin || S.view === 'concerts' || S.view === 'ended') enterBooking();
    } else {
      stopWatching();
      tokenEnded('EXPIRED');
    }
  }

  function renderQueue(st) {
    const pos = st.position;
    if (pos == null) return;
    S.startPos = Math.max(S.startPos || 0, pos);
    saveSession();
    setText('queue-concert', `${S.concert.title} · ${S.concert.venue}`);
    setText('queue-position', String(pos));
    const ahead = pos - 1;
    setText('queue-ahead', ahead === 0 ? "You're next!" : `${nf.format(ahead)} ${ahead === 1 ? 'person' : 'people'} ahead of you`);
    const pct = S.startPos > 1 ? Math.round(((S.startPos - pos) / (S.startPos - 1)) * 100) : 100;
    const bar = el('queue-progress');
    bar.setAttribute('aria-valuenow', String(pct));
    bar.setAttribute('aria-valuetext', `${pct}% of the way to the front`);
    bar.firstElementChild.style.width = `${Math.max(pct, 2)}%`;
    setText('queue-eta', fmtEta(st.etaSeconds));
    // Announce a new place, not every ETA wobble.
    if (S.announcedPos !== pos) {
      S.announcedPos = pos;
      setText('queue-announce', `You are number ${pos} in line. Estimated wait ${fmtEta(st.etaSeconds)}.`);
    }
    updateTitle(pos);
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
      if (data.status !== 'WAITING') return;
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
    stopWatching();
    stopSeatRefresh();
    let msg;
    if (code === 'TOKEN_INVALID' || code === 'TOKEN_MISSING' || code === 'TOKEN_WRONG_CONCERT') {
      msg = 'Your place in line is no longer recognised (the box office may have restarted).';
    } else if (S.hold) {
      msg = `Your booking time ran out before the payment went through, so the hold on seat ${S.hold.seatNo} will lapse.`;
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

  async function rejoin() {
    if (!S.userId || !S.concert) { goHome(); return; }
    const b = el('rejoin-btn');
    b.disabled = true;
    clearError();
    try {
      await joinAs(S.userId, S.concert);
    } catch (e) {
      showError(`Couldn't rejoin: ${e.message}`);
    } finally {
      b.disabled = false;
    }
  }

  // Common handling of errors from booking endpoints. Returns true if handled.
  function handleTokenError(e) {
    if (e.status === 401) { tokenEnded(e.code); return true; }
    if (e.status === 403 && e.code === 'TOKEN_WAITING') {
      // Should not happen once admitted; go back to waiting.
      S.startPos = e.body.position || S.startPos;
      onStatus({ status: 'WAITING', position: e.body.position, etaSeconds: e.body.etaSeconds });
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- 3. date and seat

  function enterBooking(message) {
    show('booking');
    showMsg('hold-expired-msg', message || '');
    showMsg('seat-taken-msg', '');
    S.selectedSeat = null;
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
      S.selectedSeat = null;
      S.focusSeat = null;
      el('seat-map').textContent = '';
      showMsg('seat-taken-msg', '');
      showMsg('hold-expired-msg', '');
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
      const selected = free && S.selectedSeat === s.seatNo;
      b.classList.toggle('selected', selected);
      b.setAttribute('aria-pressed', String(selected));
      const what = free ? pts(s.price) : s.status === 'SOLD' ? 'sold' : 'on hold for someone else';
      b.setAttribute('aria-label', `Seat ${s.seatNo}, ${what}`);
      b.title = `Seat ${s.seatNo} · ${free ? pts(s.price) : s.status === 'SOLD' ? 'Sold' : 'Held'}`;
    });

    // The seat someone picked was taken by somebody else meanwhile.
    if (S.selectedSeat != null) {
      const s = S.seats.find((x) => x.seatNo === S.selectedSeat);
      if (!s || s.status !== 'AVAILABLE') {
        showMsg('seat-taken-msg', `Seat ${S.selectedSeat} was just taken by someone else. Please pick another seat.`);
        S.selectedSeat = null;
        renderSelection();
      }
    }

    // Roving tab stop: one seat in the tab order, arrow keys move between seats.
    let stop = [S.focusSeat, S.selectedSeat].find((n) => n != null && seatButton(n) && !seatButton(n).disabled);
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

  function pickSeat(no) {
    const s = S.seats.find((x) => x.seatNo === no);
    if (!s || s.status !== 'AVAILABLE') return;
    S.selectedSeat = S.selectedSeat === no ? null : no;
    S.focusSeat = no;
    showMsg('seat-taken-msg', '');
    showMsg('hold-expired-msg', '');
    renderSeats();
    renderSelection();
  }

  function renderSelection() {
    const box = el('selection');
    const s = S.selectedSeat != null && S.seats.find((x) => x.seatNo === S.selectedSeat);
    if (!s) { box.hidden = true; return; }
    const sched = S.schedules.find((x) => x.scheduleId === S.scheduleId);
    setText('selection-text', `Seat ${s.seatNo} · ${pts(s.price)}${sched ? ' · ' + fmtDate(sched.startsAt) : ''}`);
    el('hold-btn').textContent = `Hold seat ${s.seatNo}`;
    box.hidden = false;
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
    if (S.busy || S.selectedSeat == null) return;
    const seatNo = S.selectedSeat;
    const scheduleId = S.scheduleId;
    const btn = el('hold-btn');
    S.busy = true;
    btn.disabled = true;
    btn.textContent = `Holding seat ${seatNo}…`;
    clearError();
    const t0 = Date.now();
    try {
      const { data } = await api('POST', '/reservations', { token: S.token, body: { scheduleId, seatNo } });
      const created = Date.parse(data.createdAt);
      if (Number.isFinite(created)) S.skewMs = created - (t0 + Date.now()) / 2;
      const sched = S.schedules.find((x) => x.scheduleId === scheduleId);
      S.hold = Object.assign({}, data, { scheduleId, seatNo, startsAt: sched ? sched.startsAt : null });
      S.payKey = null;
      saveSession();
      enterCheckout();
    } catch (e) {
      if (e.code === 'SEAT_UNAVAILABLE') {
        S.selectedSeat = null;
        renderSelection();
        showMsg('seat-taken-msg', `Sorry — seat ${seatNo} was just taken by someone else. Please pick another seat.`);
        await loadSeats();
        const stop = S.focusSeat != null ? seatButton(S.focusSeat) : null;
        if (stop) stop.focus();
      } else if (!handleTokenError(e)) {
        showError(`Couldn't hold seat ${seatNo}: ${e.message}`);
      }
    } finally {
      S.busy = false;
      btn.disabled = false;
      renderSelection();
    }
  }

  // ---------------------------------------------------------------- 4. checkout

  function enterCheckout() {
    show('checkout');
    const h = S.hold;
    S.holdWarned = false;
    const sum = el('hold-summary');
    sum.textContent = '';
    const seat = document.createElement('span');
    seat.className = 'hold-seat';
    seat.textContent = `Seat ${h.seatNo}`;
    const detail = document.createElement('span');
    detail.className = 'hold-detail';
    detail.textContent = `${h.startsAt ? fmtDate(h.startsAt) + ' · ' : ''}${pts(h.price)}`;
    sum.append(seat, detail);
    setText('hold-announce', '');
    showMsg('pay-error', '');
    setText('charge-msg', '');
    el('pay-btn').textContent = `Pay ${pts(h.price)}`;
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
      sf.textContent = `You need ${pts(short)} more to pay for this seat. Add points below (points are free in this demo).`;
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
    setText('confirm-concert', `${S.concert.title} · ${S.concert.venue}`);
    setText('confirm-date', h.startsAt ? fmtDate(h.startsAt) : '–');
    setText('confirm-seat', `Seat ${h.seatNo}`);
    setText('confirm-amount', pts(payment ? payment.amount : h.price));
    setText('confirm-payment', payment ? `#${payment.paymentId}` : 'already paid');
    setText('confirm-balance', payment ? pts(payment.balance) : '–');
    show('done');
  }

  function holdExpired() {
    const seat = S.hold ? S.hold.seatNo : null;
    S.hold = null;
    S.payKey = null;
    saveSession();
    enterBooking(`Your hold on seat ${seat} ran out before payment, so the seat went back on sale. Please pick a seat again.`);
  }

  function changeSeat() {
    S.hold = null;
    S.payKey = null;
    saveSession();
    enterBooking();
  }

  // ---------------------------------------------------------------- clocks

  function tick() {
    const now = serverNow();
    if ((S.view === 'booking' || S.view === 'checkout') && S.activeUntil) {
      const left = S.activeUntil - now;
      setText('active-remaining', fmtClock(left));
      if (left <= 0) checkEnded();
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
    } catch (e) {
      if (e.status === 401) tokenEnded(e.code);
    } finally {
      setTimeout(() => { S.checkingEnd = false; }, 3000);
    }
  }

  // ---------------------------------------------------------------- wiring

  function goHome() {
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
      else if (a === 'change-seat') changeSeat();
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
