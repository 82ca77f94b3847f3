// seat-burst — everybody who was just admitted opens the seat map of the same popular date.
//
// Purpose   The read side of the on-sale: VUS admitted fans x LOOKUPS lookups of one schedule's
//           seat map, all at once. Closed model (per-vu-iterations): a fixed crowd, as in a burst.
// Traffic   Iteration 0 of each VU joins the line with its own user and polls status (honouring
//           Retry-After) until ACTIVE — that part is tagged phase=admit and is not what the SLO is
//           about. Every iteration then reads GET /schedules/{SCHEDULE}/seats, alternating the full
//           map and ?status=AVAILABLE (both served from the per-schedule snapshot). Full scale:
//           10,000 VUs x 5 lookups of a 500-seat date.
// Why these The seat map is the heaviest answer of the API (tens of KB) and the one everybody
//           refreshes; one popular date is the hot key.
// Bottleneck Serialising/sending the snapshot (CPU and bytes), not SQLite: lookups never query
//           per request. Under a 10,000-connection burst the accept queue and the 2 cores shared
//           with k6 dominate.
// Server    seed: USERS >= VUS, SCHEDULES >= SCHEDULE. serve: the waiting room wide open
//           (max-active and admission-rate >= VUS) so every VU can be ACTIVE at the same time,
//           claim-window long enough for the whole crowd to claim.
// SLO       seats p95 < 200 ms, p99 < 500 ms, < 1% errors; every answer checked (one VU in
//           VERIFY_EVERY reads bodies) lists SEATS seats (full map) or only AVAILABLE seats (filtered).
import exec from 'k6/execution';
import { Api, body, ROUTES } from '../lib/api.js';
import { expectStatus, invariant } from '../lib/checks.js';
import { scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { enter } from '../lib/journey.js';
import { buildOptions } from '../lib/options.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';

const cfg = scenarioConfig('seat-burst');
const VUS = cfg.knob('VUS', 200);
const LOOKUPS = cfg.knob('LOOKUPS', 5);
const SCHEDULE = cfg.knob('SCHEDULE', 1);
const VERIFY_EVERY = cfg.knob('VERIFY_EVERY', 10);
const CONCERT = Math.floor((SCHEDULE - 1) / cfg.schedules) + 1;

export const options = buildOptions({
  scenarios: {
    'seat-burst': {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: LOOKUPS,
      maxDuration: cfg.scale === 'full' ? '10m' : '60s',
      gracefulStop: '10s',
    },
  },
  slo: {
    seats: { p95: 200, p99: 500 },
    join: { p95: 1000 },
    status: { p95: 500 },
  },
  thresholds: {
    'http_req_duration{name:GET /api/v1/schedules/{schedule_id}/seats,variant:all}': ['max>=0'],
    'http_req_duration{name:GET /api/v1/schedules/{schedule_id}/seats,variant:available}': ['max>=0'],
  },
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);
let token = null;

export default function () {
  if (token === null) {
    exec.vu.metrics.tags.phase = 'admit';
    const e = enter(api, fixtures.vuUser(0, 1), CONCERT, { maxWaitSeconds: 120 });
    invariant(e.ok, 'VU got an ACTIVE token');
    if (!e.ok) {
      exec.test.abort(`VU ${exec.vu.idInTest} could not become ACTIVE (${e.reason}); is the waiting room wide open?`);
    }
    token = e.token;
    exec.vu.metrics.tags.phase = 'lookup';
  }
  const all = exec.vu.iterationInScenario % 2 === 0;
  // Parsing a 25 KB seat map in k6's JS engine costs more CPU than the server spends serving it,
  // and k6 shares the 2 cores with the server: only every VERIFY_EVERY-th VU reads the bodies.
  const verify = (exec.vu.idInTest - 1) % VERIFY_EVERY === 0;
  const res = api.seats(token, SCHEDULE, { onlyAvailable: !all, discard: !verify });
  expectStatus(res, ROUTES.seats, 200);
  if (!verify) return;
  const b = body(res);
  if (!b || !Array.isArray(b.seats)) return;
  if (all) invariant(b.seats.length === cfg.seats, 'full seat map lists every seat');
  else invariant(b.seats.every((s) => s.status === 'AVAILABLE'), 'filtered seat map lists only AVAILABLE seats');
}

export const handleSummary = makeHandleSummary(cfg, (data) => ({
  lookups: metricValue(data, `http_reqs{name:${ROUTES.seats}}`, 'count'),
  lookupsPerSecondOverRun: Number((metricValue(data, `http_reqs{name:${ROUTES.seats}}`, 'rate') || 0).toFixed(1)),
  seatsP95ms: metricValue(data, `http_req_duration{name:${ROUTES.seats}}`, 'p(95)'),
  bytesReceived: metricValue(data, 'data_received', 'count'),
}));
