// points — concurrent charges and uses on a few hot users.
//
// Purpose   Look for lost updates and double applications in the points ledger: VUS VUs hammer
//           HOT_USERS users (VUS/HOT_USERS VUs per user at any moment) with charges and uses, each
//           with its own Idempotency-Key, plus deliberate replays (same key, same body: must answer
//           exactly as the first time and apply nothing) and reused keys (same key, other amount:
//           must be 409 IDEMPOTENCY_KEY_REUSED). Closed model (constant-vus): contention is a matter
//           of how many requests are in flight on the same user at once, which a fixed number of
//           looping VUs pins down.
// Traffic   per iteration, for the VU's hot user: 45% charge 1..20,000; 40% use 1..30,000 (409
//           INSUFFICIENT_POINTS expected when the balance is short); 10% replay the VU's last
//           successful call; 5% reuse its key with another amount. A balance read after each call.
// Why these The ledger is the money: balance = sum(ledger) >= 0, and a key is applied at most once.
//           `use` is the same debit a payment performs, without needing a queue token.
// Bottleneck The single SQLite writer (every charge/use is one transaction) and the hot rows of
//           a few users; idempotency-key lookups on replays.
// Server    seed: USERS >= HOT_USERS, BALANCE 50,000 so uses sometimes fail. serve: defaults.
// SLO       charge, use p95 < 100 ms, p99 < 250 ms; balance p95 < 50 ms; < 1% unexpected errors;
//           conservation: sum(successful charges) - sum(successful uses) == sum(final balances) -
//           sum(initial balances), exactly (points_drift == 0); no balance ever negative; every
//           replay identical; every reused key refused. The audit re-checks balance = ledger.
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { Api, body, EXPECT, problemCode, ROUTES } from '../lib/api.js';
import { expectStatus, invariant } from '../lib/checks.js';
import { scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { buildOptions } from '../lib/options.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';

const cfg = scenarioConfig('points');
const HOT = cfg.knob('HOT_USERS', 10);
const VUS = cfg.knob('VUS', 40);
const DURATION = cfg.knob('DURATION', '10s');

// +amount for each applied charge, -amount for each applied use, and in teardown -(final - initial):
// the sum is 0 exactly when no point was lost or applied twice.
const drift = new Counter('points_drift');
const charged = new Counter('points_charged');
const used = new Counter('points_used');
const insufficient = new Counter('points_use_insufficient');
const replays = new Counter('points_replays');
const reusedKeys = new Counter('points_reused_keys');

export const options = buildOptions({
  scenarios: {
    points: { executor: 'constant-vus', vus: VUS, duration: DURATION, gracefulStop: '10s' },
  },
  slo: {
    charge: { p95: 100, p99: 250 },
    use: { p95: 100, p99: 250 },
    balance: { p95: 50, p99: 150 },
  },
  thresholds: {
    points_drift: ['count==0'],
  },
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);
const hotUsers = Array.from({ length: Math.min(HOT, cfg.users) }, (_, i) => fixtures.hotUser(HOT, i));

function balances() {
  const out = {};
  for (const u of hotUsers) {
    const res = api.balance(u);
    const b = body(res);
    if (res.status !== 200 || !b) throw new Error(`balance of user ${u}: ${res.status} ${res.body}`);
    out[u] = b.balance;
  }
  return out;
}

export function setup() {
  const initial = balances();
  drift.add(0);
  return { initial, hotUsers };
}

let last = null; // this VU's last applied call: { op, user, amount, key, answer }
const rnd = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));

function call(op, user, amount, key, expect) {
  return op === 'charge' ? api.charge(user, amount, key, { expect }) : api.use(user, amount, key, { expect });
}

export default function () {
  const user = hotUsers[(exec.vu.idInTest - 1) % hotUsers.length];
  const run = exec.scenario.startTime;
  const r = Math.random();

  if (last && r >= 0.85 && r < 0.95) {
    // replay: same key, same body -> the stored answer, nothing applied
    const res = call(last.op, last.user, last.amount, last.key, EXPECT.OK);
    replays.add(1);
    expectStatus(res, ROUTES[last.op], 200);
    const b = body(res);
    invariant(b && b.balance === last.answer.balance && b.amount === last.answer.amount, `${last.op} replay answers exactly like the first call`);
  } else if (last && r >= 0.95) {
    // reused key with another amount -> 409 IDEMPOTENCY_KEY_REUSED, nothing applied
    const res = call(last.op, last.user, last.amount + 1, last.key, EXPECT.OK_OR_CONFLICT);
    reusedKeys.add(1);
    expectStatus(res, ROUTES[last.op], 409);
    invariant(problemCode(res) === 'IDEMPOTENCY_KEY_REUSED', `${last.op} with a reused key is refused`);
  } else {
    const op = r < 0.45 ? 'charge' : 'use';
    const amount = op === 'charge' ? rnd(1, 20000) : rnd(1, 30000);
    const key = `pts-${run}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
    const res = call(op, user, amount, key, op === 'use' ? EXPECT.OK_OR_CONFLICT : EXPECT.OK);
    if (op === 'charge') expectStatus(res, ROUTES.charge, 200);
    else expectStatus(res, ROUTES.use, 200, 409);
    const b = body(res);
    if (res.status === 200 && b) {
      invariant(b.userId === user && b.amount === amount && b.balance >= 0, `${op} answer is consistent and balance >= 0`);
      drift.add(op === 'charge' ? amount : -amount);
      (op === 'charge' ? charged : used).add(amount);
      last = { op, user, amount, key, answer: b };
    } else if (res.status === 409) {
      insufficient.add(1);
      invariant(problemCode(res) === 'INSUFFICIENT_POINTS', 'a refused use is INSUFFICIENT_POINTS');
    }
  }

  const bal = api.balance(user);
  expectStatus(bal, ROUTES.balance, 200);
  const bb = body(bal);
  invariant(bb && bb.balance >= 0, 'balance is never negative');
}

export function teardown(data) {
  const final = balances();
  let delta = 0;
  for (const u of data.hotUsers) {
    invariant(final[u] >= 0, 'final balance >= 0');
    delta += final[u] - data.initial[u];
  }
  drift.add(-delta);
}

export const handleSummary = makeHandleSummary(cfg, (data) => ({
  hotUsers: hotUsers.length,
  vus: VUS,
  pointsCharged: metricValue(data, 'points_charged', 'count') || 0,
  pointsUsed: metricValue(data, 'points_used', 'count') || 0,
  usesRefusedInsufficient: metricValue(data, 'points_use_insufficient', 'count') || 0,
  replays: metricValue(data, 'points_replays', 'count') || 0,
  reusedKeysRefused: metricValue(data, 'points_reused_keys', 'count') || 0,
  drift: metricValue(data, 'points_drift', 'count'),
  conserved: metricValue(data, 'points_drift', 'count') === 0,
  writesPerSecond: Number(
    (((metricValue(data, `http_reqs{name:${ROUTES.charge}}`, 'count') || 0) + (metricValue(data, `http_reqs{name:${ROUTES.use}}`, 'count') || 0)) /
      ((data.state.testRunDurationMs || 1) / 1000)).toFixed(1),
  ),
}));
