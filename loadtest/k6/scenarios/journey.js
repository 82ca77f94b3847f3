// journey — the expected on-sale load: people arrive at a rate and each one buys a seat.
//
// Purpose   The main load test. Open model (ramping-arrival-rate): new people keep arriving
//           whether or not the server keeps up, exactly like fans; a closed model would slow its
//           arrivals down when the server slows down and hide the problem (coordinated omission).
// Traffic   START_RATE -> RATE arrivals/s over RAMP_UP, RATE for STEADY, down over RAMP_DOWN.
//           Each arrival is a new seeded user (never shared) on a random concert:
//             POST /queue/tokens -> GET /queue/status every Retry-After seconds until ACTIVE
//             (the server's instruction, not think time) -> GET /concerts/{id}/schedules ->
//             GET /schedules/{id}/seats?status=AVAILABLE -> POST /reservations on a random
//             available seat (another one on 409) -> GET /users/{id}/points -> POST .../charge
//             when the balance is short (seed BALANCE=100000: the 150000 seats need a charge, the
//             90000 ones do not) -> POST /payments with an Idempotency-Key.
//           Full scale: up to 100 journeys/s, ~15,000 purchases over 3 minutes on 5 concerts.
// Why these Every endpoint a buyer touches, in the proportions a buyer touches them.
// Bottleneck The single SQLite writer (join, claim, hold, charge, payment are each one write
//           transaction: ~5 per journey) and the admission rate, which paces the booking flow
//           on purpose (time in queue grows when arrivals exceed it).
// Server    seed: USERS >= all arrivals, CONCERTS*SCHEDULES*SEATS >= all arrivals (nobody
//           should find a concert sold out). serve: admission-rate per concert >= RATE/CONCERTS
//           so the line stays short; max-active comfortably above admission-rate x journey time.
// SLO       join p95 < 200 ms; status, schedules, seats, balance p95 < 100 ms; hold, charge
//           p95 < 200 ms; pay p95 < 300 ms; p99 < 2.5x p95; < 1% errors per endpoint;
//           >= 99% of journeys end paid; time in queue p95 < 5 s; no dropped arrivals.
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
  slo: journeySlo(),
  thresholds: {
    journey_ok: ['rate>0.99'],
    journey_time_in_queue: ['p(95)<5000'],
    dropped_iterations: ['count==0'],
  },
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);

export default function () {
  journey(api, { user: fixtures.arrivalUser(), concert: fixtures.randomConcert() });
}

const seconds = durationSeconds(RAMP_UP) + durationSeconds(STEADY) + durationSeconds(RAMP_DOWN);
export const handleSummary = makeHandleSummary(cfg, (data) =>
  Object.assign(journeyExtras(data), {
    offeredPeakRate: RATE,
    plannedSeconds: seconds,
    holdConflicts: metricValue(data, 'hold_conflicts', 'count') || 0,
  }),
);
