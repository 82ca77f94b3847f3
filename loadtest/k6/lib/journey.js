// One person's way through the on-sale, as the waiting-room contract asks them to behave:
//   join -> poll status honouring Retry-After -> dates -> seats -> hold a random available seat
//   (another one on 409) -> charge points if short -> pay.
// Used by journey, peak, stress, soak (one new person per arrival) and flash-sale (where most
// people find nothing left). Returns { outcome: 'paid'|'sold_out'|'abandoned'|'failed', ... }.
import { sleep } from 'k6';
import exec from 'k6/execution';
import { body, problemCode, retryAfterSeconds, ROUTES } from './api.js';
import { expectStatus, invariant } from './checks.js';
import { pick, takeRandom } from './fixtures.js';
import * as M from './metrics.js';

let warnings = 0;
function warn(msg) {
  if (warnings++ < 5) console.warn(`VU ${exec.vu.idInTest}: ${msg}`);
}

// Poll until the token is ACTIVE. `res` is the join answer (it carries status and Retry-After).
// Sleeps exactly what Retry-After says: that is the server's instruction, not think time.
export function waitUntilActive(api, token, res, { maxWaitSeconds = 300 } = {}) {
  const t0 = Date.now();
  let b = body(res);
  let polls = 0;
  while (b && b.status === 'WAITING') {
    invariant(b.position >= 1, 'WAITING answer has position >= 1');
    if ((Date.now() - t0) / 1000 > maxWaitSeconds) return { ok: false, reason: 'queue_timeout', polls, waitedMs: Date.now() - t0 };
    sleep(retryAfterSeconds(res, 1));
    res = api.status(token);
    polls++;
    expectStatus(res, ROUTES.status, 200);
    if (res.status !== 200) return { ok: false, reason: 'status', polls, waitedMs: Date.now() - t0 };
    b = body(res);
  }
  const ok = Boolean(b) && b.status === 'ACTIVE';
  return { ok, reason: ok ? '' : `queue_${b ? b.status : 'no_body'}`, polls, waitedMs: Date.now() - t0 };
}

// Join and wait until ACTIVE. Returns { ok, token, reason, waitedMs, polls, joinRes }.
export function enter(api, user, concert, opts = {}) {
  const t = Date.now();
  const res = api.join(user, concert);
  M.stepJoin.add(Date.now() - t);
  expectStatus(res, ROUTES.join, 201, 200);
  const b = body(res);
  if ((res.status !== 201 && res.status !== 200) || !b || !b.token) return { ok: false, reason: 'join', joinRes: res };
  const w = waitUntilActive(api, b.token, res, opts);
  return Object.assign({ token: b.token, joinRes: res }, w);
}

function availableSchedules(api, token, concert) {
  const res = api.schedules(token, concert);
  expectStatus(res, ROUTES.schedules, 200);
  const b = body(res);
  if (res.status !== 200 || !b || !Array.isArray(b.schedules)) return null;
  return b.schedules.filter((s) => s.availableSeats > 0).map((s) => s.scheduleId);
}

function availableSeats(api, token, scheduleId) {
  const res = api.seats(token, scheduleId, { onlyAvailable: true });
  expectStatus(res, ROUTES.seats, 200);
  const b = body(res);
  if (res.status !== 200 || !b || !Array.isArray(b.seats)) return null;
  invariant(b.seats.every((s) => s.status === 'AVAILABLE'), '?status=AVAILABLE lists only AVAILABLE seats');
  return b.seats;
}

// Find and hold a seat. Returns { held: reservation } | { soldOut: true } | { error: reason }.
// After a few conflicts in a row the seat list is stale: re-read the map, as a person would,
// instead of trying every seat of an old list (which turns a sell-out into a hold storm).
function holdSomeSeat(api, token, concert, { maxAttempts = 20, maxRefreshes = 4, conflictsBeforeRefresh = 3 } = {}) {
  const tBrowse = Date.now();
  let browseMs = 0;
  let holdMs = 0;
  let attempts = 0;
  for (let refresh = 0; refresh <= maxRefreshes; refresh++) {
    const t = Date.now();
    const schedules = availableSchedules(api, token, concert);
    if (schedules === null) return { error: 'schedules', attempts };
    if (schedules.length === 0) {
      M.stepBrowse.add(Date.now() - tBrowse);
      return { soldOut: true, attempts };
    }
    const scheduleId = pick(schedules);
    const seats = availableSeats(api, token, scheduleId);
    if (seats === null) return { error: 'seats', attempts };
    browseMs += Date.now() - t;
    const th = Date.now();
    let conflicts = 0;
    while (seats.length > 0 && attempts < maxAttempts && conflicts < conflictsBeforeRefresh) {
      const seat = takeRandom(seats);
      const res = api.hold(token, scheduleId, seat.seatNo);
      attempts++;
      expectStatus(res, ROUTES.hold, 201, 409);
      if (res.status === 201) {
        const r = body(res);
        holdMs += Date.now() - th;
        M.stepBrowse.add(browseMs);
        M.stepHold.add(holdMs);
        invariant(r && r.status === 'HELD' && r.seatNo === seat.seatNo && r.price === seat.price, 'hold answer matches the seat asked for');
        return { held: r, attempts };
      }
      if (res.status !== 409) return { error: 'hold', attempts };
      M.holdConflicts.add(1);
      conflicts++;
      const code = problemCode(res);
      invariant(code === 'SEAT_UNAVAILABLE', 'a 409 on hold is SEAT_UNAVAILABLE');
    }
    holdMs += Date.now() - th;
    if (attempts >= maxAttempts) return { error: 'hold_attempts', attempts };
  }
  return { error: 'hold_refreshes', attempts };
}

// Make sure the user can pay `price`; charges the difference when short.
function ensurePoints(api, user, price, key) {
  const t = Date.now();
  const res = api.balance(user);
  expectStatus(res, ROUTES.balance, 200);
  const b = body(res);
  if (res.status !== 200 || !b) return false;
  invariant(b.balance >= 0, 'balance is never negative');
  if (b.balance < price) {
    const amount = price - b.balance;
    const c = api.charge(user, amount, key);
    expectStatus(c, ROUTES.charge, 200);
    if (c.status !== 200) return false;
    M.pointsCharged.add(amount);
  }
  M.stepPoints.add(Date.now() - t);
  return true;
}

// opts: user, concert, soldOutIsOk (flash-sale), abandonRate (soak), maxQueueSeconds, runId
export function journey(api, opts) {
  const { user, concert, soldOutIsOk = false, abandonRate = 0, maxQueueSeconds = 300 } = opts;
  const runId = opts.runId || String(exec.scenario.startTime);
  const t0 = Date.now();
  M.journeysStarted.add(1);
  const done = (outcome, reason = '', extra = {}) => {
    const ok = outcome === 'paid' || outcome === 'abandoned' || (outcome === 'sold_out' && soldOutIsOk);
    M.journeyOk.add(ok);
    if (outcome === 'failed') {
      M.journeysFailed.add(1, { reason });
      warn(`journey of user ${user} failed at ${reason}`);
    }
    if (outcome === 'sold_out') {
      M.journeysSoldOut.add(1);
      if (!soldOutIsOk) warn(`user ${user} found concert ${concert} sold out; seed more seats`);
    }
    return Object.assign({ outcome, reason, ok, user, concert, ms: Date.now() - t0 }, extra);
  };

  // 1-2. join and wait for admission
  const e = enter(api, user, concert, { maxWaitSeconds: maxQueueSeconds });
  if (!e.ok) return done('failed', e.reason);
  M.timeInQueue.add(e.waitedMs);
  M.statusPolls.add(e.polls);

  // 3-4. dates, seats, hold
  const h = holdSomeSeat(api, e.token, concert, opts);
  if (h.attempts > 0) M.holdAttempts.add(h.attempts);
  if (h.soldOut) return done('sold_out');
  if (h.error) return done('failed', h.error);
  const r = h.held;

  if (abandonRate > 0 && Math.random() < abandonRate) {
    M.journeysAbandoned.add(1);
    return done('abandoned');
  }

  // 5. points
  if (!ensurePoints(api, user, r.price, `charge-${runId}-${r.reservationId}`)) return done('failed', 'points');

  // 6. pay (the same Idempotency-Key on every retry of this payment)
  const tp = Date.now();
  const key = `pay-${runId}-${r.reservationId}`;
  let res = api.pay(e.token, r.reservationId, key);
  if (res.status === 409 && problemCode(res) === 'INSUFFICIENT_POINTS') {
    // Someone else moved this user's points between the balance read and the payment: top up, retry.
    if (!ensurePoints(api, user, r.price, `charge2-${runId}-${r.reservationId}`)) return done('failed', 'points');
    res = api.pay(e.token, r.reservationId, key);
  }
  expectStatus(res, ROUTES.pay, 201);
  M.stepPay.add(Date.now() - tp);
  if (res.status !== 201) {
    warn(`pay ${r.reservationId}: ${res.status} ${res.body}`);
    return done('failed', 'pay');
  }
  const p = body(res);
  invariant(p && p.amount === r.price && p.balance >= 0, 'payment debits the seat price and leaves balance >= 0');
  M.ticketsSold.add(1);
  M.journeysCompleted.add(1);
  M.journeyDuration.add(Date.now() - t0);
  return done('paid', '', { reservation: r, payment: p, paidAt: Date.now() });
}
