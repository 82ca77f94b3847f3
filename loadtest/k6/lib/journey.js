// One person's way through the on-sale, as the waiting-room contract asks them to behave:
//   join -> poll status honouring Retry-After -> dates -> seats -> hold random available seats
//   together (1 seat, or a group of up to groupMax; other seats on 409) -> charge points if
//   short -> pay -> (optionally) look at "my tickets".
// Some people let go of their hold instead of paying and leave the line (releaseRate); people who
// find everything sold out may leave the line (leaveIfSoldOut) instead of keeping their slot.
// Used by journey, peak, stress, soak (one new person per arrival) and flash-sale (where most
// people find nothing left). Returns { outcome: 'paid'|'sold_out'|'abandoned'|'released'|'failed', ... }.
import { sleep } from 'k6';
import exec from 'k6/execution';
import { body, OK_OR_GONE, problemCode, retryAfterSeconds, ROUTES } from './api.js';
import { expectStatus, invariant } from './checks.js';
import { pick, takeRandom, takeRandomN } from './fixtures.js';
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
  // PRE_QUEUE (before a scheduled on-sale's draw) waits like WAITING, without a place.
  while (b && (b.status === 'WAITING' || b.status === 'PRE_QUEUE')) {
    if (b.status === 'WAITING') invariant(b.position >= 1, 'WAITING answer has position >= 1');
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
  // 410: the line closed (sold out) before this person got in; a normal end of a sell-out.
  const res = api.join(user, concert, undefined, OK_OR_GONE);
  M.stepJoin.add(Date.now() - t);
  expectStatus(res, ROUTES.join, 201, 200, 410);
  const b = body(res);
  if (res.status === 410) return { ok: false, reason: `queue_${(b && b.code) || 'GONE'}`, joinRes: res };
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

// How many seats a person wants together, 1..max: mostly pairs, then singles, fours and threes
// (weights 30/45/10/15 for 1/2/3/4; beyond 4 the last weight is spread evenly). max 1 = always 1.
const GROUP_WEIGHTS = [0.3, 0.45, 0.1, 0.15];
export function groupSize(max) {
  if (!(max > 1)) return 1;
  const w = [];
  for (let i = 0; i < max; i++) w.push(i < GROUP_WEIGHTS.length - 1 ? GROUP_WEIGHTS[i] : GROUP_WEIGHTS[GROUP_WEIGHTS.length - 1] / (max - GROUP_WEIGHTS.length + 1));
  const total = w.reduce((a, b) => a + b, 0);
  let x = Math.random() * total;
  for (let i = 0; i < max; i++) {
    x -= w[i];
    if (x < 0) return i + 1;
  }
  return max;
}

const sortedNos = (list) => list.map(Number).sort((a, b) => a - b);
const sameSeats = (a, b) => a.length === b.length && sortedNos(a).every((n, i) => n === sortedNos(b)[i]);

// Find and hold `want` seats of one date together. Returns { held: reservation, asked } |
// { soldOut: true } | { error: reason }. A 409 SEAT_UNAVAILABLE names the taken seats (none of
// the group was held): those leave the list, the rest of the group goes back into it. When a date
// has fewer seats left than wanted, the person settles for what is left (so a sell-out sells every
// seat). After a few conflicts in a row the seat list is stale: re-read the map, as a person
// would, instead of trying every seat of an old list (which turns a sell-out into a hold storm).
function holdSomeSeats(api, token, concert, { want = 1, maxAttempts = 20, maxRefreshes = 4, conflictsBeforeRefresh = 3 } = {}) {
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
      const group = want === 1 ? [takeRandom(seats)] : takeRandomN(seats, Math.min(want, seats.length));
      const asked = group.map((x) => x.seatNo);
      const res = api.hold(token, scheduleId, asked);
      attempts++;
      expectStatus(res, ROUTES.hold, 201, 200, 409);
      // 200: a retry after a lost answer found the hold already made (the same seats again).
      if (res.status === 201 || res.status === 200) {
        const r = body(res);
        holdMs += Date.now() - th;
        M.stepBrowse.add(browseMs);
        M.stepHold.add(holdMs);
        M.holdGroupSize.add(asked.length);
        const total = group.reduce((a, x) => a + x.price, 0);
        invariant(
          r && r.status === 'HELD' && Array.isArray(r.seatNos) && sameSeats(r.seatNos, asked) && r.price === total &&
            Array.isArray(r.seats) && r.seats.length === asked.length && r.seatNo === Math.min(...asked),
          'hold answer matches the seats asked for (seatNos, seats, price = their total)',
        );
        return { held: r, attempts, asked };
      }
      if (res.status !== 409) return { error: 'hold', attempts };
      M.holdConflicts.add(1);
      conflicts++;
      const code = problemCode(res);
      invariant(code === 'SEAT_UNAVAILABLE', 'a 409 on hold is SEAT_UNAVAILABLE');
      const b = body(res);
      const taken = b && Array.isArray(b.seats) ? b.seats.map(Number) : [];
      invariant(taken.length > 0 && taken.every((n) => asked.includes(n)), 'SEAT_UNAVAILABLE names taken seats, all of them asked for');
      // The others of the group were not held (all or nothing) and may still be free.
      for (const x of group) if (!taken.includes(x.seatNo)) seats.push(x);
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

// Leave the line; true when the server said LEFT (was: the standing before, when known).
function leaveLine(api, token, was) {
  const res = api.leave(token);
  expectStatus(res, ROUTES.leave, 200);
  const b = body(res);
  const ok = res.status === 200 && Boolean(b) && b.status === 'LEFT';
  if (ok) M.lineLeft.add(1);
  if (res.status === 200) invariant(ok && (!was || !b.was || b.was === was), `leaving answers LEFT (was ${was || 'any'})`);
  return ok;
}

// My tickets: the newest reservation is `r` with `status` (and `paymentId`, when given).
function checkMyTickets(api, token, r, status, paymentId) {
  const res = api.myReservations(token);
  expectStatus(res, ROUTES.myReservations, 200);
  const b = body(res);
  if (res.status !== 200) return false;
  const first = b && Array.isArray(b.reservations) ? b.reservations[0] : null;
  invariant(
    first && first.reservationId === r.reservationId && first.status === status && sameSeats(first.seatNos || [], r.seatNos) &&
      first.price === r.price && (paymentId === undefined || first.paymentId === paymentId),
    `my tickets lists the newest reservation first, ${status}, with its seats and total`,
  );
  return true;
}

// opts: user, concert, soldOutIsOk (flash-sale), abandonRate (soak), maxQueueSeconds, runId,
//   groupMax (seats held together: a random 1..groupMax per person, default 1),
//   releaseRate (share of holders who let go of the hold and leave the line instead of paying),
//   leaveIfSoldOut (nothing left: leave the line rather than keep the slot until active-ttl),
//   checkTickets (look at "my tickets" at the end: paid or released)
export function journey(api, opts) {
  const { user, concert, soldOutIsOk = false, abandonRate = 0, maxQueueSeconds = 300 } = opts;
  const { groupMax = 1, releaseRate = 0, leaveIfSoldOut = false, checkTickets = false } = opts;
  const runId = opts.runId || String(exec.scenario.startTime);
  const t0 = Date.now();
  M.journeysStarted.add(1);
  const done = (outcome, reason = '', extra = {}) => {
    const ok = outcome === 'paid' || outcome === 'abandoned' || outcome === 'released' || (outcome === 'sold_out' && soldOutIsOk);
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
  // The last seat sold while this person waited: the line closed and sent them home.
  if (!e.ok && e.reason === 'queue_SOLD_OUT') return done('sold_out', e.reason);
  if (!e.ok) return done('failed', e.reason);
  M.timeInQueue.add(e.waitedMs);
  M.statusPolls.add(e.polls);

  // 3-4. dates, seats, hold (alone or together)
  const h = holdSomeSeats(api, e.token, concert, Object.assign({}, opts, { want: groupSize(groupMax) }));
  if (h.attempts > 0) M.holdAttempts.add(h.attempts);
  if (h.soldOut) {
    if (leaveIfSoldOut) leaveLine(api, e.token, 'ACTIVE');
    return done('sold_out');
  }
  if (h.error) return done('failed', h.error);
  const r = h.held;
  const seatCount = r.seatNos.length;

  if (abandonRate > 0 && Math.random() < abandonRate) {
    M.journeysAbandoned.add(1);
    return done('abandoned');
  }

  // Changed their mind: let go of the hold (the seats are on sale again at once) and leave the line.
  if (releaseRate > 0 && Math.random() < releaseRate) {
    const rel = api.release(e.token, r.reservationId);
    expectStatus(rel, ROUTES.release, 200);
    if (rel.status !== 200) return done('failed', 'release');
    const rb = body(rel);
    invariant(rb && rb.reservationId === r.reservationId && rb.status === 'RELEASED' && sameSeats(rb.seatNos || [], r.seatNos),
      'release answers RELEASED with the seats of the hold');
    M.seatsReleased.add(seatCount);
    if (!leaveLine(api, e.token, 'ACTIVE')) return done('failed', 'leave');
    if (checkTickets && !checkMyTickets(api, e.token, r, 'RELEASED')) return done('failed', 'my_tickets');
    M.journeysReleased.add(1);
    return done('released', '', { reservation: r });
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
  invariant(p && p.amount === r.price && p.reservationId === r.reservationId && p.balance >= 0,
    'one payment debits the total of the seats held and leaves balance >= 0');
  M.ticketsSold.add(seatCount);
  M.paymentsMade.add(1);
  M.journeysCompleted.add(1);
  M.journeyDuration.add(Date.now() - t0);
  const paidAt = Date.now();
  // The payment ended the token; "my tickets" still takes it.
  if (checkTickets && p) checkMyTickets(api, e.token, r, 'CONFIRMED', p.paymentId);
  return done('paid', '', { reservation: r, payment: p, paidAt });
}
