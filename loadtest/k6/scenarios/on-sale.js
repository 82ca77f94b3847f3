// on-sale — a crowd that arrives before a scheduled on-sale, the draw, the rush and the sell-out.
//
// Purpose   The scheduled on-sale end to end (issue 14): the operator sets onSaleAt LEAD_SECONDS
//           ahead; BUYERS people (more than the seats) join before it and wait in the pre-queue
//           with a pseudonymous entry id; at onSaleAt one draw gives each of them a place; they
//           are admitted in that order, buy 1 to GROUP_MAX seats, and the last sale closes the
//           line: everyone still waiting is sent home SOLD_OUT, and LATE joiners who arrive after
//           that are refused 410 SOLD_OUT. Closed model (per-vu-iterations, 1 iteration per VU).
// Traffic   setup: PATCH …/line {onSaleAt}; the published draw shows only its commitment.
//           Each buyer VU: join (must be PRE_QUEUE, with an entryId), poll honouring Retry-After
//           until the draw places them, then the flash-sale journey (hold a group, pay). Every
//           CHECK_EVERY-th buyer reads the published draw once placed and checks its entry is in
//           it exactly once. LATE extra VUs join after the sell-out and must get 410 SOLD_OUT.
// Audit     teardown: the published draw recomputes (SHA-256(seed) = the commitment announced in
//           setup; entries ranked by SHA-256(seed ":" entry)), it holds exactly BUYERS distinct
//           entries (everyone who joined early, once), and the operator's view shows no seat left
//           and the line SOLD_OUT. With tickets_sold == SEATS nothing is oversold; the runner's
//           `boxoffice audit` afterwards proves admission followed the places (FIFO) and the limit.
// SLO       join p95 < 1 s, status p95 < 500 ms, hold p95 < 300 ms, pay p95 < 500 ms; every
//           buyer ends paid or sold out; tickets_sold == SEATS.
import crypto from 'k6/crypto';
import exec from 'k6/execution';
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { Api, body, OK_OR_GONE, ROUTES } from '../lib/api.js';
import { scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { journey } from '../lib/journey.js';
import { expectStatus, invariant } from '../lib/checks.js';
import { buildOptions } from '../lib/options.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';

const cfg = scenarioConfig('on-sale');
const BUYERS = cfg.knob('BUYERS', 150);
const LATE = cfg.knob('LATE', 20);
const GROUP_MAX = cfg.knob('GROUP_MAX', 4);
const LEAD_SECONDS = cfg.knob('LEAD_SECONDS', 10);
const CHECK_EVERY = cfg.knob('CHECK_EVERY', 1);
const ADMIN_TOKEN = cfg.knob('ADMIN_TOKEN', '');
const SEATS_TOTAL = cfg.totalSeats;

const preQueueJoins = new Counter('on_sale_pre_queue_joins');
const lateRefused = new Counter('on_sale_late_refused');
const entriesChecked = new Counter('on_sale_entries_checked');
const unexpected = new Counter('on_sale_unexpected_outcomes');
const placedAfter = new Trend('on_sale_placed_after_start', true); // ms from onSaleAt to a place
const paidAt = new Trend('on_sale_paid_after_start', true);

export const options = buildOptions({
  scenarios: {
    buyers: {
      executor: 'per-vu-iterations',
      vus: BUYERS,
      iterations: 1,
      maxDuration: cfg.scale === 'full' ? '15m' : '2m',
      gracefulStop: '10s',
      exec: 'buyer',
    },
    late: {
      executor: 'per-vu-iterations',
      vus: LATE,
      iterations: 1,
      maxDuration: cfg.scale === 'full' ? '15m' : '2m',
      gracefulStop: '10s',
      exec: 'late',
    },
  },
  slo: {
    join: { p95: 1000, p99: 2000 },
    status: { p95: 500, p99: 1000 },
    schedules: { p95: 300, p99: 1000 },
    seats: { p95: 300, p99: 1000 },
    hold: { p95: 300, p99: 1000 },
    pay: { p95: 500, p99: 1000 },
    leave: { p95: 300, p99: 1000 },
  },
  thresholds: {
    tickets_sold: [`count==${SEATS_TOTAL}`],
    journey_ok: ['rate==1'],
    on_sale_unexpected_outcomes: ['count==0'],
    on_sale_pre_queue_joins: [`count==${BUYERS}`],
    on_sale_late_refused: [`count==${LATE}`],
  },
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);

export function setup() {
  invariant(ADMIN_TOKEN.length > 0, 'setup: ADMIN_TOKEN is set (the scenario schedules the on-sale)');
  const startsAt = new Date(Date.now() + LEAD_SECONDS * 1000).toISOString();
  const res = api.changeLine(ADMIN_TOKEN, 1, { onSaleAt: startsAt });
  expectStatus(res, ROUTES.adminChangeLine, 200);
  const line = (body(res) || {}).line || {};
  const d = body(api.draw(1)) || {};
  invariant(d.drawn === false && d.seed === null && d.commitment === line.drawCommitment,
    'before the on-sale the draw publishes only its commitment');
  return { startsAt: Date.parse(startsAt), commitment: d.commitment };
}

// Counts an outcome outside the scenario's expectations and says which, in k6's output.
function odd(outcome, extra = {}) {
  unexpected.add(1, { outcome });
  console.warn(`unexpected outcome ${outcome} ${JSON.stringify(extra)}`);
}

function hex(s) {
  return crypto.sha256(s, 'hex');
}

export function buyer(data) {
  const user = fixtures.vuUser(0, 1);
  const joined = api.join(user, 1);
  const b = body(joined) || {};
  // 200: the client's retry after a lost answer (k6 starved, or a closed keep-alive) found the
  // join already made; the same token and entry come back, which is the contract.
  if (!((joined.status === 201 || joined.status === 200) && b.status === 'PRE_QUEUE' && /^[0-9a-f]{16}$/.test(b.entryId || ''))) {
    odd('join_not_pre_queue', { status: joined.status, body: b });
    return;
  }
  preQueueJoins.add(1);
  // Wait for the draw, then shop like a flash-sale buyer (the journey joins again: same token).
  let st = b;
  while (st.status === 'PRE_QUEUE') {
    sleep(Math.min(Math.max((data.startsAt - Date.now()) / 1000, 0.2), 2));
    st = body(api.status(b.token)) || {};
  }
  placedAfter.add(Math.max(Date.now() - data.startsAt, 0));
  // WAITING and ACTIVE answers carry the entry (contract: entryId "as onSaleAt"); a fan whose first
  // poll after the draw comes after the sell-out reads SOLD_OUT, which carries none, and still
  // finds their entry in the published draw below.
  const placed = st.status === 'WAITING' || st.status === 'ACTIVE';
  if (placed && st.entryId !== b.entryId) odd('entry_changed', { was: b.entryId, now: st });
  if (!placed && st.status !== 'SOLD_OUT') odd(`after_draw_${st.status}`, st);
  if (CHECK_EVERY > 0 && exec.vu.idInTest % CHECK_EVERY === 0) {
    const d = body(api.draw(1)) || {};
    const n = (d.entries || []).filter((e) => e === b.entryId).length;
    if (d.drawn === true && n === 1) entriesChecked.add(1);
    else odd('entry_not_drawn_once', { entry: b.entryId, drawn: d.drawn, times: n });
  }
  const r = journey(api, {
    user,
    concert: 1,
    soldOutIsOk: true,
    maxQueueSeconds: cfg.scale === 'full' ? 600 : 90,
    maxAttempts: SEATS_TOTAL + 50,
    maxRefreshes: 100,
    groupMax: GROUP_MAX,
    leaveIfSoldOut: true,
  });
  if (r.outcome === 'paid') paidAt.add(Date.now() - data.startsAt);
  else if (r.outcome !== 'sold_out') odd(r.outcome, { reason: r.reason });
}

// Arrives after the sell-out: the line is closed.
export function late(data) {
  const user = fixtures.vuUser(0, 1); // VU ids run on from the buyers': distinct users
  const deadline = Date.now() + (cfg.scale === 'full' ? 600 : 90) * 1000;
  for (;;) {
    const l = body(api.line(ADMIN_TOKEN, 1)) || {};
    if (l.closed === 'SOLD_OUT') break;
    if (Date.now() > deadline) {
      odd('never_sold_out');
      return;
    }
    sleep(1);
  }
  const res = api.join(user, 1, {}, OK_OR_GONE);
  const b = body(res) || {};
  if (res.status === 410 && b.code === 'SOLD_OUT') lateRefused.add(1);
  else odd('late_join_not_refused', { status: res.status, code: b.code });
}

export function teardown(data) {
  const d = body(api.draw(1)) || {};
  const entries = d.entries || [];
  const ranked = entries
    .map((e) => ({ e, k: hex(`${d.seed}:${e}`) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.e);
  const distinct = new Set(entries).size;
  console.log(`teardown: draw of ${entries.length} entries (${distinct} distinct), commitment ${d.commitment}`);
  invariant(d.drawn === true && hex(d.seed || '') === data.commitment && d.commitment === data.commitment,
    'the published seed hashes to the commitment announced before the on-sale');
  invariant(ranked.every((e, i) => e === entries[i]), 'the published order is the ranking by SHA-256(seed:entry)');
  invariant(entries.length === BUYERS && distinct === BUYERS, 'every early buyer was drawn exactly once');
  const res = api.line(ADMIN_TOKEN, 1);
  const l = body(res) || {};
  console.log(`teardown: the line shows ${l.seatsLeft} seats left, ${l.preQueue} in the pre-queue, closed ${l.closed}`);
  invariant(res.status === 200 && l.seatsLeft === 0 && l.closed === 'SOLD_OUT' && l.waiting === 0 && l.preQueue === 0,
    'after the sale no seat is left, the line is SOLD_OUT and nobody waits');
}

export const handleSummary = makeHandleSummary(cfg, (data) => {
  const sold = metricValue(data, 'tickets_sold', 'count') || 0;
  return {
    buyers: BUYERS,
    late: LATE,
    seats: SEATS_TOTAL,
    sold,
    soldEqualsSeats: sold === SEATS_TOTAL,
    preQueueJoins: metricValue(data, 'on_sale_pre_queue_joins', 'count') || 0,
    entriesChecked: metricValue(data, 'on_sale_entries_checked', 'count') || 0,
    lateRefused: metricValue(data, 'on_sale_late_refused', 'count') || 0,
    soldOutSeenBy: metricValue(data, 'journeys_sold_out', 'count') || 0,
    placedAfterStartP95Ms: metricValue(data, 'on_sale_placed_after_start', 'p(95)'),
    timeToSellOutMs: metricValue(data, 'on_sale_paid_after_start', 'max'),
    unexpected: metricValue(data, 'on_sale_unexpected_outcomes', 'count') || 0,
  };
});
