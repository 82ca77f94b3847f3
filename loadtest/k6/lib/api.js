// The boxoffice API client used by every scenario.
//
// Every request carries the tag `name` = "<METHOD> <route template>", spelled exactly like the
// `route` label of the server's own boxoffice_http_requests_total metric, so k6 figures and server
// figures can be joined per endpoint. Per-endpoint thresholds use these names (see ROUTES).
//
// Expected statuses: the global response callback counts only 2xx as "expected"; the calls where a
// 409 is a normal business answer (a seat someone else took — for a group hold, any seat of the
// group —, a points use larger than the balance, an Idempotency-Key reused with another body) pass
// their own callback, so those 409s do not count in http_req_failed. Anything else non-2xx (401,
// 403, 410, 5xx, timeouts) is a failure.
//
// A 503 (DEPENDENCY_UNAVAILABLE: the writer queue or the pool is saturated) is answered with
// Retry-After; the client honours it and retries a bounded number of times. Retrying is safe for
// every call made here: joins return the same token, payments/charges/uses carry an
// Idempotency-Key, and reads have no effect. The failed attempt still counts in http_req_failed.
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';

export const ROUTES = {
  join: 'POST /api/v1/queue/tokens',
  status: 'GET /api/v1/queue/status',
  concerts: 'GET /api/v1/concerts',
  schedules: 'GET /api/v1/concerts/{concert_id}/schedules',
  seats: 'GET /api/v1/schedules/{schedule_id}/seats',
  hold: 'POST /api/v1/reservations',
  reservation: 'GET /api/v1/reservations/{reservation_id}',
  release: 'POST /api/v1/reservations/{reservation_id}/release',
  myReservations: 'GET /api/v1/me/reservations',
  leave: 'POST /api/v1/queue/leave',
  balance: 'GET /api/v1/users/{user_id}/points',
  charge: 'POST /api/v1/users/{user_id}/points/charge',
  use: 'POST /api/v1/users/{user_id}/points/use',
  pay: 'POST /api/v1/payments',
  history: 'GET /api/v1/users/{user_id}/points/history',
  ready: 'GET /health/ready',
  draw: 'GET /api/v1/concerts/{concert_id}/draw',
  adminLine: 'GET /api/v1/admin/concerts/{concert_id}/line',
  adminChangeLine: 'PATCH /api/v1/admin/concerts/{concert_id}/line',
};

const OK = http.expectedStatuses({ min: 200, max: 299 });
const OK_OR_CONFLICT = http.expectedStatuses({ min: 200, max: 299 }, 409);
export const OK_OR_GONE = http.expectedStatuses({ min: 200, max: 299 }, 410);
http.setResponseCallback(OK);

export const retries503 = new Counter('http_503_retries');

// Every answer outside a call's expected statuses is logged for the run's report (status, code,
// endpoint, time, the first bytes of the body): at most LOG_LIMIT per VU, so a failure storm
// cannot flood the output; the report's counts come from all requests regardless.
const ALLOWED = new Map([[OK, []], [OK_OR_CONFLICT, [409]], [OK_OR_GONE, [410]]]);
const LOG_LIMIT = 20;
let logged = 0;

function noteUnexpected(name, res, expect) {
  const extra = ALLOWED.get(expect);
  if (extra === undefined || logged >= LOG_LIMIT) return; // a caller's own expectations: theirs to judge
  if ((res.status >= 200 && res.status < 300) || extra.includes(res.status)) return;
  logged++;
  let code = '';
  try {
    code = (res.json() || {}).code || '';
  } catch (_) {
    // not JSON
  }
  const text = typeof res.body === 'string' ? res.body.slice(0, 160) : '';
  const entry = { t: new Date().toISOString(), endpoint: name, status: res.status, code, body: text, error: res.error || '' };
  console.warn(`UNEXPECTED_RESPONSE ${JSON.stringify(entry)}`);
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

export function retryAfterSeconds(res, fallback = 1) {
  const raw = res && res.headers && (res.headers['Retry-After'] || res.headers['retry-after']);
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

// The parsed JSON body, or null (network error, empty or non-JSON body).
export function body(res) {
  if (!res || !res.body) return null;
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

// The problem+json `code` of an error answer, or ''.
export function problemCode(res) {
  const b = res && res.status >= 400 ? body(res) : null;
  return (b && b.code) || '';
}

export class Api {
  constructor(baseUrl, { timeout = '10s', max503Retries = 3, tags = {} } = {}) {
    this.base = baseUrl;
    this.timeout = timeout;
    this.max503Retries = max503Retries;
    this.tags = tags;
  }

  // One logical call: the request plus bounded retries on 503 / network errors, honouring Retry-After.
  send(method, path, name, { json, token, headers = {}, expect = OK, tags = {}, retryNetwork = true, discard = false } = {}) {
    // Like every browser, accept gzip (k6 decompresses it); the server gzips only the seat map.
    const h = Object.assign({ 'Accept-Encoding': 'gzip' }, headers);
    if (json !== undefined) Object.assign(h, JSON_HEADERS);
    if (token) h.Authorization = `Bearer ${token}`;
    const params = {
      headers: h,
      tags: Object.assign({ name }, this.tags, tags),
      timeout: this.timeout,
      responseCallback: expect,
    };
    if (discard) params.responseType = 'none';
    const payload = json === undefined ? null : JSON.stringify(json);
    let res;
    for (let attempt = 0; ; attempt++) {
      res = http.request(method, this.base + path, payload, params);
      noteUnexpected(name, res, expect);
      const retryable = res.status === 503 || (res.status === 0 && retryNetwork);
      if (!retryable || attempt >= this.max503Retries) return res;
      retries503.add(1, { name });
      sleep(Math.min(retryAfterSeconds(res, 1), 5));
    }
  }

  ready() {
    return this.send('GET', '/health/ready', ROUTES.ready);
  }

  // 201/200 with a token; a closed line answers 410 SOLD_OUT / LINE_CLOSED (expected where a
  // scenario sells out: pass expect = OK_OR_GONE).
  join(userId, concertId, tags, expect = OK) {
    return this.send('POST', '/api/v1/queue/tokens', ROUTES.join, { json: { userId, concertId }, tags, expect });
  }

  // The operator's view of a line (needs the admin secret).
  line(adminToken, concertId, tags) {
    return this.send('GET', `/api/v1/admin/concerts/${concertId}/line`, ROUTES.adminLine, { token: adminToken, tags });
  }

  // Changes a line: {maxActive, admissionRate, paused, closed, onSaleAt}.
  changeLine(adminToken, concertId, change, tags) {
    return this.send('PATCH', `/api/v1/admin/concerts/${concertId}/line`, ROUTES.adminChangeLine, {
      token: adminToken,
      json: change,
      tags,
    });
  }

  // The published on-sale draw.
  draw(concertId, tags) {
    return this.send('GET', `/api/v1/concerts/${concertId}/draw`, ROUTES.draw, { tags });
  }

  status(token, tags) {
    return this.send('GET', '/api/v1/queue/status', ROUTES.status, { token, tags });
  }

  concerts(tags) {
    return this.send('GET', '/api/v1/concerts', ROUTES.concerts, { tags });
  }

  schedules(token, concertId, tags) {
    return this.send('GET', `/api/v1/concerts/${concertId}/schedules`, ROUTES.schedules, { token, tags });
  }

  // onlyAvailable adds ?status=AVAILABLE (same route, tagged variant=available).
  seats(token, scheduleId, { onlyAvailable = true, discard = false, tags = {} } = {}) {
    const q = onlyAvailable ? '?status=AVAILABLE' : '';
    return this.send('GET', `/api/v1/schedules/${scheduleId}/seats${q}`, ROUTES.seats, {
      token,
      discard,
      tags: Object.assign({ variant: onlyAvailable ? 'available' : 'all' }, tags),
    });
  }

  // Leave the line (WAITING or ACTIVE): 200 {status: "LEFT", was}. Safe to retry: leaving twice
  // answers 200 with was "ENDED".
  leave(token, tags) {
    return this.send('POST', '/api/v1/queue/leave', ROUTES.leave, { token, tags });
  }

  // 201 HELD, or 409 SEAT_UNAVAILABLE (expected under contention; `seats` names the taken ones).
  // `seats` is one seat number ({seatNo}) or a list held together, all or nothing ({seatNos}); a
  // list of one is sent as {seatNo}, as a one-seat buyer's client would.
  hold(token, scheduleId, seats, tags) {
    const list = Array.isArray(seats) ? seats : [seats];
    return this.send('POST', '/api/v1/reservations', ROUTES.hold, {
      token,
      json: list.length === 1 ? { scheduleId, seatNo: list[0] } : { scheduleId, seatNos: list },
      expect: OK_OR_CONFLICT,
      tags,
      // Retried on network errors like the other calls: a hold lost on the wire (a keep-alive
      // connection the server closed as idle, a time-out) may have committed, and asking again
      // for exactly the same seats answers 200 with that hold (docs/contract.md).
    });
  }

  reservation(token, reservationId, tags) {
    return this.send('GET', `/api/v1/reservations/${reservationId}`, ROUTES.reservation, { token, tags });
  }

  // Let go of a hold: 200 with status RELEASED (also for a hold already over). Any token of the
  // holder; retrying is safe (releasing twice answers the same).
  release(token, reservationId, tags) {
    return this.send('POST', `/api/v1/reservations/${reservationId}/release`, ROUTES.release, { token, tags });
  }

  // My tickets: 200 {userId, reservations: [...]}, newest first. Any validly signed token, also
  // one that ended with its payment.
  myReservations(token, tags) {
    return this.send('GET', '/api/v1/me/reservations', ROUTES.myReservations, { token, tags });
  }

  // A 409 here (INSUFFICIENT_POINTS, ALREADY_PAID) is a failure unless the caller says otherwise.
  pay(token, reservationId, idempotencyKey, { expect = OK, tags } = {}) {
    return this.send('POST', '/api/v1/payments', ROUTES.pay, {
      token,
      json: { reservationId },
      headers: { 'Idempotency-Key': idempotencyKey },
      expect,
      tags,
    });
  }

  balance(userId, tags) {
    return this.send('GET', `/api/v1/users/${userId}/points`, ROUTES.balance, { tags });
  }

  charge(userId, amount, idempotencyKey, { expect = OK, tags } = {}) {
    return this.send('POST', `/api/v1/users/${userId}/points/charge`, ROUTES.charge, {
      json: { amount },
      headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {},
      expect,
      tags,
      retryNetwork: Boolean(idempotencyKey),
    });
  }

  // 200, or 409 INSUFFICIENT_POINTS / IDEMPOTENCY_KEY_REUSED (expected in the points scenario).
  use(userId, amount, idempotencyKey, { expect = OK_OR_CONFLICT, tags } = {}) {
    return this.send('POST', `/api/v1/users/${userId}/points/use`, ROUTES.use, {
      json: { amount },
      headers: idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {},
      expect,
      tags,
      retryNetwork: Boolean(idempotencyKey),
    });
  }

  history(userId, limit, tags) {
    const q = limit ? `?limit=${limit}` : '';
    return this.send('GET', `/api/v1/users/${userId}/points/history${q}`, ROUTES.history, { tags });
  }
}

export const EXPECT = { OK, OK_OR_CONFLICT };
