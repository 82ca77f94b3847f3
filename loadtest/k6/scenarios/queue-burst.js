// queue-burst — the first second of an on-sale: everybody hits "join" at once.
//
// Purpose   How fast the waiting room hands out tokens and answers "where am I" when VUS fans
//           arrive together. Closed model on purpose (per-vu-iterations): a burst is a fixed crowd
//           that is already there, not an arrival rate.
// Traffic   VUS VUs x ITERATIONS iterations; each iteration is a new fan (distinct seeded user,
//           never shared between VUs): POST /queue/tokens (201), then GET /queue/status once
//           (the position a fan sees right after joining). Full scale: 10,000 VUs x 5 = 50,000 fans.
// Why these The join is the only write every single visitor makes (it is journalled before it is
//           answered, so a restart keeps everyone's place); status is the most frequent read of
//           the whole on-sale (every waiting fan polls it).
// Bottleneck The single SQLite writer: every join is one BEGIN IMMEDIATE transaction, so joins
//           queue behind each other (≈12k/s ceiling measured by bench/core.py); all fans are in
//           one line (one concert), so the room's writer lock is one hot key. Status is in memory.
// Server    seed: USERS >= VUS*ITERATIONS, 1 concert. serve: default admission (max-active 200,
//           admission-rate 20/s): almost everybody stays WAITING, which is the point.
// SLO       join p95 < 500 ms, p99 < 1 s; status p95 < 200 ms, p99 < 500 ms; < 1% errors;
//           every WAITING answer has position >= 1 and a Retry-After; positions within a line are
//           distinct per fan (checked loosely: position <= number of fans).
import exec from 'k6/execution';
import { Api, body, ROUTES } from '../lib/api.js';
import { expectStatus, invariant } from '../lib/checks.js';
import { scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { buildOptions } from '../lib/options.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';
import { Counter, Trend } from 'k6/metrics';

const cfg = scenarioConfig('queue-burst');
const VUS = cfg.knob('VUS', 200);
const ITERATIONS = cfg.knob('ITERATIONS', 5);
const CONCERT = cfg.knob('CONCERT', 1);

const positions = new Trend('queue_position_at_join');
const admittedAtJoin = new Counter('queue_active_at_join');

export const options = buildOptions({
  scenarios: {
    'queue-burst': {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: ITERATIONS,
      maxDuration: cfg.scale === 'full' ? '10m' : '60s',
      gracefulStop: '10s',
    },
  },
  slo: {
    join: { p95: 500, p99: 1000 },
    status: { p95: 200, p99: 500 },
  },
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);

export default function () {
  const user = fixtures.vuUser(exec.vu.iterationInScenario, ITERATIONS);
  const j = api.join(user, CONCERT);
  expectStatus(j, ROUTES.join, 201);
  const jb = body(j);
  if (!jb || !jb.token) return;
  invariant(['WAITING', 'ACTIVE'].includes(jb.status), 'join answers WAITING or ACTIVE');
  if (jb.status === 'WAITING') {
    invariant(jb.position >= 1 && jb.position <= VUS * ITERATIONS, 'join position within 1..fans');
    invariant(j.headers['Retry-After'] !== undefined, 'WAITING join carries Retry-After');
    positions.add(jb.position);
  } else {
    admittedAtJoin.add(1);
  }

  const s = api.status(jb.token);
  expectStatus(s, ROUTES.status, 200);
  const sb = body(s);
  if (!sb) return;
  invariant(['WAITING', 'ACTIVE'].includes(sb.status), 'status answers WAITING or ACTIVE');
  if (sb.status === 'WAITING' && jb.status === 'WAITING') {
    // Nobody leaves the waiting part of a line except from its front: a place never gets worse.
    invariant(sb.position <= jb.position, 'position never grows between join and status');
  }
}

export const handleSummary = makeHandleSummary(cfg, (data) => ({
  fans: metricValue(data, `http_reqs{name:${ROUTES.join}}`, 'count'),
  joinsPerSecond: Number((metricValue(data, `http_reqs{name:${ROUTES.join}}`, 'rate') || 0).toFixed(1)),
  deepestPosition: metricValue(data, 'queue_position_at_join', 'max'),
}));
