// journey — the expected on-sale load: people arrive at a rate and each one buys seats.
//
// Purpose   The main load test. Open model (ramping-arrival-rate): new people keep arriving
//           whether or not the server keeps up, exactly like fans; a closed model would slow its
//           arrivals down when the server slows down and hide the problem (coordinated omission).
// Traffic   START_RATE -> RATE arrivals/s over RAMP_UP, RATE for STEADY, down over RAMP_DOWN.
//           Each arrival is a new seeded user (never shared) on a random concert:
//             POST /queue/tokens -> GET /queue/status every Retry-After seconds until ACTIVE
//             (the server's instruction, not think time) -> GET /concerts/{id}/schedules ->
//             GET /schedules/{id}/seats?status=AVAILABLE -> POST /reservations holding a random
//             group of available seats of that date together (group size 1..GROUP_MAX=4, mostly
//             pairs: 30/45/10/15 %; sent as {seatNo} for one seat, {seatNos} for more; on 409
//             the taken seats named in the answer are dropped and another group is tried) ->
//             RELEASE_RATE (10 %) of them change their mind: POST /reservations/{id}/release, then
//             POST /queue/leave (their slot goes to the next person) -> the others:
//             GET /users/{id}/points -> POST .../charge when the balance is short (seed
//             BALANCE=100000: almost every group needs a charge) -> one POST /payments for all
//             the seats, with an Idempotency-Key -> GET /me/reservations (my tickets, with the
//             token the payment ended; also after a release).
//           Full scale: up to 100 journeys/s, ~15,000 journeys (~30,000 seats) over 3 minutes on
//           5 concerts.
// Why these Every endpoint a buyer touches, in the proportions a buyer touches them.
// Bottleneck The single SQLite writer (join, claim, hold, charge, payment are each one write
//           transaction: ~5 per journey; a release and a leave are one more each) and the
//           admission rate, which paces the booking flow on purpose (time in queue grows when
//           arrivals exceed it).
// Server    seed: USERS >= all arrivals, CONCERTS*SCHEDULES*SEATS >= ~2.1 x all arrivals (the
//           mean group size; nobody should find a concert sold out). serve: admission-rate per
//           concert >= RATE/CONCERTS so the line stays short; max-active comfortably above
//           admission-rate x journey time; --max-seats-per-order >= GROUP_MAX (default 4).
// SLO       join p95 < 200 ms; status, schedules, seats, balance, my tickets p95 < 100 ms; hold,
//           charge, release, leave p95 < 200 ms; pay p95 < 300 ms; p99 < 2.5x p95; < 1% errors
//           per endpoint; >= 99% of journeys end paid or released; time in queue p95 < 5 s; no
//           dropped arrivals.
import { Api } from '../lib/api.js';
import { scenarioConfig, durationSeconds } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { journey } from '../lib/journey.js';
import { buildOptions } from '../lib/options.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';
import { journeySlo, journeyExtras } from '../lib/slo.js';

const cfg = scenarioConfig('journey');
const START_RATE = cfg.knob('START_RATE', 5);
const RATE = cfg.knob('RATE', 20);
const RAMP_UP = cfg.knob('RAMP_UP', '3s');
const STEADY = cfg.knob('STEADY', '7s');
const RAMP_DOWN = cfg.knob('RAMP_DOWN', '2s');
const GROUP_MAX = cfg.knob('GROUP_MAX', 4);
const RELEASE_RATE = cfg.knob('RELEASE_RATE', 0.1);
const CHECK_TICKETS = Boolean(cfg.knob('CHECK_TICKETS', 1));

const slo = journeySlo();
slo.release = { p95: 200, p99: 500 };
slo.leave = { p95: 200, p99: 500 };
slo.myReservations = { p95: 100, p99: 250 };

export const options = buildOptions({
  scenarios: {
    journey: {
      executor: 'ramping-arrival-rate',
      startRate: START_RATE,
      timeUnit: '1s',
      preAllocatedVUs: cfg.knob('PRE_VUS', 40),
      maxVUs: cfg.knob('MAX_VUS', 200),
      stages: [
        { target: RATE, duration: RAMP_UP },
        { target: RATE, duration: STEADY },
        { target: 0, duration: RAMP_DOWN },
      ],
      gracefulStop: '30s',
    },
  },
  slo,
  thresholds: {
    journey_ok: ['rate>0.99'],
    journey_time_in_queue: ['p(95)<5000'],
    dropped_iterations: ['count==0'],
  },
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);

export default function () {
  journey(api, {
    user: fixtures.arrivalUser(),
    concert: fixtures.randomConcert(),
    groupMax: GROUP_MAX,
    releaseRate: RELEASE_RATE,
    checkTickets: CHECK_TICKETS,
  });
}

const seconds = durationSeconds(RAMP_UP) + durationSeconds(STEADY) + durationSeconds(RAMP_DOWN);
export const handleSummary = makeHandleSummary(cfg, (data) =>
  Object.assign(journeyExtras(data), {
    offeredPeakRate: RATE,
    plannedSeconds: seconds,
    holdConflicts: metricValue(data, 'hold_conflicts', 'count') || 0,
    groupMax: GROUP_MAX,
    seatsPerHoldAvg: metricValue(data, 'journey_hold_group_size', 'avg'),
    seatsSold: metricValue(data, 'tickets_sold', 'count') || 0,
    payments: metricValue(data, 'payments_made', 'count') || 0,
    journeysReleased: metricValue(data, 'journeys_released', 'count') || 0,
    seatsReleased: metricValue(data, 'seats_released', 'count') || 0,
  }),
);
