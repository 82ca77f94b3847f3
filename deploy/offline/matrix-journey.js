// matrix-journey — the buyer journey as a CLOSED model, lean on the load generator's CPU, for the
// resource matrix (deploy/offline/resource-matrix.py).
//
//   k6 run -e BASE_URL=http://127.0.0.1:18190 -e USERS=100000 -e CONCERTS=20 -e VUS=128 \
//     -e DURATION=30s -e SEED=7 [-e SUMMARY_JSON=out.json] deploy/offline/matrix-journey.js
//
// VUS looping buyers for DURATION. Each iteration is a new seeded user (the k-th element of the
// kit's fixed pseudo-random permutation of 1..USERS, loadtest/k6/lib/fixtures.js; SEED picks the
// permutation) on a random concert, walking the same steps as loadtest/k6/lib/journey.js:
//   POST /queue/tokens -> (GET /queue/status, honouring Retry-After, while WAITING) ->
//   GET /concerts/{id}/schedules -> GET /schedules/{id}/seats?status=AVAILABLE -> POST /reservations
//   on a random available seat (another one on 409) -> GET /users/{id}/points -> POST .../charge when
//   short -> POST /payments with an Idempotency-Key.
// Requests accept gzip, as a browser does (the server gzips the seat map).
//
// Why not the kit's journey (loadtest/k6/scenarios/journey.js) itself: it is an open model (a fixed
// arrival rate measures k6's schedule, not the server's capacity), and its per-step checks,
// invariants and custom trends cost k6 about 0.32 ms of CPU per request: on the one core k6 gets in
// the matrix it topped out at ~3,100 req/s (k6 at 0.98 of a core) with the server at 0.6 of its
// 1-CPU cap. This script keeps only what the matrix reads (per-status counts, per-endpoint
// latency, completed journeys) and costs k6 0.19-0.25 ms per request on a quiet box: enough for
// the server to be what runs out up to 0.5 CPU; at 1 CPU k6's core is still the limit (~4,000
// req/s), which the matrix reports. A closed model saturates whatever it runs against: the offered
// load is whatever the server can take, so the throughput at a cap is that cap's capacity.
//
// Server: serve --max-active and --admission-rate above VUS (nobody waits: the waiting room does
// not pace the journeys). USERS and CONCERTS x dates x seats must exceed the journeys of one run:
// every iteration takes a new user; the test aborts when they run out.
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { ROUTES } from '../../loadtest/k6/lib/api.js';
import { makePermutation } from '../../loadtest/k6/lib/fixtures.js';

const BASE = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const USERS = Number(__ENV.USERS || 100000);
const CONCERTS = Number(__ENV.CONCERTS || 20);
const VUS = Number(__ENV.VUS || 128);
const DURATION = __ENV.DURATION || '30s';
const SEED = Number(__ENV.SEED || 1);

// Answers counted one by one (0 = no answer: refused, reset, timed out).
export const STATUSES = [0, 200, 201, 400, 401, 403, 404, 408, 409, 410, 429, 500, 502, 503, 504];
const STEPS = ['join', 'status', 'schedules', 'seats', 'hold', 'balance', 'charge', 'pay'];

const thresholds = {};
for (const s of STATUSES) thresholds[`http_reqs{status:${s}}`] = ['count>=0'];
for (const k of STEPS) thresholds[`http_req_duration{name:${ROUTES[k]}}`] = ['max>=0'];

export const options = {
  scenarios: { journey: { executor: 'constant-vus', vus: VUS, duration: DURATION, gracefulStop: '5s' } },
  thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  systemTags: ['status', 'method', 'name', 'expected_response', 'error_code'],
  userAgent: 'boxoffice-k6-matrix/1',
};

const completed = new Counter('journeys_completed');
const failed = new Counter('journeys_failed');
const holdConflicts = new Counter('hold_conflicts');

const OK = http.expectedStatuses({ min: 200, max: 299 });
const OK_OR_CONFLICT = http.expectedStatuses({ min: 200, max: 299 }, 409);
const perm = makePermutation(USERS, SEED);

function req(method, path, step, { json, token, key, expect = OK } = {}) {
  const headers = { 'Accept-Encoding': 'gzip' };
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  if (key) headers['Idempotency-Key'] = key;
  return http.request(method, BASE + path, json === undefined ? null : JSON.stringify(json), {
    headers,
    tags: { name: ROUTES[step] },
    timeout: '10s',
    responseCallback: expect,
  });
}

function parsed(res) {
  try {
    return res.body ? res.json() : null;
  } catch (_) {
    return null;
  }
}

// A failed step ends the journey; back off a little when the server is gone or overloaded, so a
// dead server is not hammered by a spinning loop.
function fail(reason, res) {
  failed.add(1, { reason });
  if (!res || res.status === 0) sleep(0.1);
  else if (res.status === 503) sleep(Math.min(Number(res.headers['Retry-After']) || 1, 1));
}

export default function () {
  const k = exec.scenario.iterationInTest;
  if (k >= USERS) exec.test.abort(`fixtures exhausted: need user #${k + 1}, USERS=${USERS}`);
  const user = perm(k) + 1;
  const concert = 1 + Math.floor(Math.random() * CONCERTS);

  let res = req('POST', '/api/v1/queue/tokens', 'join', { json: { userId: user, concertId: concert } });
  let b = parsed(res);
  if ((res.status !== 200 && res.status !== 201) || !b || !b.token) return fail('join', res);
  const token = b.token;
  for (let polls = 0; b.status === 'WAITING'; polls++) {
    if (polls >= 60) return fail('queue', res);
    sleep(Math.min(Number(res.headers['Retry-After']) || 1, 5));
    res = req('GET', '/api/v1/queue/status', 'status', { token });
    b = parsed(res);
    if (res.status !== 200 || !b) return fail('status', res);
  }
  if (b.status !== 'ACTIVE') return fail('queue', res);

  let hold = null;
  for (let refresh = 0; refresh < 3 && !hold; refresh++) {
    res = req('GET', `/api/v1/concerts/${concert}/schedules`, 'schedules', { token });
    b = parsed(res);
    if (res.status !== 200 || !b || !Array.isArray(b.schedules)) return fail('schedules', res);
    const dates = b.schedules.filter((s) => s.availableSeats > 0);
    if (dates.length === 0) return fail('sold_out', res);
    const scheduleId = dates[Math.floor(Math.random() * dates.length)].scheduleId;
    res = req('GET', `/api/v1/schedules/${scheduleId}/seats?status=AVAILABLE`, 'seats', { token });
    b = parsed(res);
    if (res.status !== 200 || !b || !Array.isArray(b.seats)) return fail('seats', res);
    const seats = b.seats;
    for (let tries = 0; tries < 3 && seats.length > 0; tries++) {
      const seat = seats.splice(Math.floor(Math.random() * seats.length), 1)[0];
      res = req('POST', '/api/v1/reservations', 'hold', { token, json: { scheduleId, seatNo: seat.seatNo }, expect: OK_OR_CONFLICT });
      if (res.status === 201) {
        hold = parsed(res);
        break;
      }
      if (res.status !== 409) return fail('hold', res);
      holdConflicts.add(1);
    }
  }
  if (!hold || !hold.reservationId) return fail('hold', res);

  res = req('GET', `/api/v1/users/${user}/points`, 'balance');
  b = parsed(res);
  if (res.status !== 200 || !b) return fail('balance', res);
  if (b.balance < hold.price) {
    res = req('POST', `/api/v1/users/${user}/points/charge`, 'charge', {
      json: { amount: hold.price - b.balance },
      key: `mx-charge-${SEED}-${hold.reservationId}`,
    });
    if (res.status !== 200) return fail('charge', res);
  }
  res = req('POST', '/api/v1/payments', 'pay', { token, json: { reservationId: hold.reservationId }, key: `mx-pay-${SEED}-${hold.reservationId}` });
  if (res.status !== 201) return fail('pay', res);
  completed.add(1);
}

function value(data, name, stat) {
  const m = data.metrics[name];
  return m && m.values ? m.values[stat] : undefined;
}

export function handleSummary(data) {
  const secs = (data.state.testRunDurationMs || 1) / 1000;
  const requests = value(data, 'http_reqs', 'count') || 0;
  const journeys = value(data, 'journeys_completed', 'count') || 0;
  const byStatus = {};
  for (const s of STATUSES) {
    const n = value(data, `http_reqs{status:${s}}`, 'count') || 0;
    if (n) byStatus[String(s)] = n;
  }
  const counted = Object.values(byStatus).reduce((a, b) => a + b, 0);
  if (requests > counted) byStatus.other = requests - counted;
  const lat = (name) => {
    const m = data.metrics[name];
    if (!m) return null;
    const v = m.values;
    return { avg: v.avg, med: v.med, p90: v['p(90)'], p95: v['p(95)'], p99: v['p(99)'], max: v.max };
  };
  const endpoints = {};
  for (const k of STEPS) {
    const l = lat(`http_req_duration{name:${ROUTES[k]}}`);
    if (l && l.max !== undefined) endpoints[ROUTES[k]] = l;
  }
  const failedByReason = {};
  for (const [name, m] of Object.entries(data.metrics)) {
    const r = /^journeys_failed\{reason:(.*)\}$/.exec(name);
    if (r) failedByReason[r[1]] = m.values.count;
  }
  const summary = {
    schema: 'boxoffice-matrix-journey/1',
    baseUrl: BASE,
    vus: VUS,
    duration: DURATION,
    seed: SEED,
    users: USERS,
    concerts: CONCERTS,
    testRunDurationMs: data.state.testRunDurationMs,
    requests,
    requestsPerSecond: requests / secs,
    failedRate: value(data, 'http_req_failed', 'rate') || 0,
    byStatus,
    journeysCompleted: journeys,
    journeysPerSecond: journeys / secs,
    journeysFailed: value(data, 'journeys_failed', 'count') || 0,
    failedByReason,
    holdConflicts: value(data, 'hold_conflicts', 'count') || 0,
    iterations: value(data, 'iterations', 'count') || 0,
    latency: lat('http_req_duration'),
    endpoints,
    connecting: lat('http_req_connecting'),
  };
  const text =
    `matrix-journey: ${requests} requests (${summary.requestsPerSecond.toFixed(1)}/s), ` +
    `${journeys} journeys (${summary.journeysPerSecond.toFixed(1)}/s) in ${secs.toFixed(1)} s; ` +
    `p95 ${summary.latency ? summary.latency.p95.toFixed(1) : '-'} ms, p99 ${summary.latency ? summary.latency.p99.toFixed(1) : '-'} ms; ` +
    `failed ${(summary.failedRate * 100).toFixed(2)}%; by status ${JSON.stringify(byStatus)}\n`;
  const out = { stdout: text };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(summary, null, 1);
  return out;
}
