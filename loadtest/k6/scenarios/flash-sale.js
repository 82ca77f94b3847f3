// flash-sale — many more buyers than seats, all at the same instant.
//
// Purpose   The correctness test under contention: BUYERS people (full scale 20,000) want one of
//           SEATS seats (full scale 500) of a single date. Exactly SEATS seats must be sold — not
//           one more (double sale), not one less (a seat lost in a stuck hold) — and we measure how
//           long the sell-out takes. Closed model (per-vu-iterations, 1 iteration per VU): the
//           crowd is all there at second 0.
// Traffic   Each VU is one buyer (a distinct seeded user): join, poll honouring Retry-After until
//           ACTIVE, read the dates; if nothing is left -> "sold out", leave. Otherwise read the
//           AVAILABLE seats, hold a random one (another on 409 SEAT_UNAVAILABLE, re-reading the map
//           when the list runs out), pay (seeded balance covers the price). A 201 payment is one
//           ticket (tickets_sold).
// Why these Hold and pay on one hot date are where a double sale would happen; status polling and
//           the dates read are what the losers cost.
// Bottleneck Hot-seat contention: admitted buyers race for the same few seats, so most holds
//           answer 409 and each retry is another write transaction on the single SQLite writer;
//           each hold also drops the seat snapshot, so seat reads rebuild it.
// Server    seed: 1 concert x 1 schedule x SEATS seats, USERS >= BUYERS, BALANCE >= 150000.
//           serve: max-active >= BUYERS. The API has no way to leave the line or give an ACTIVE
//           slot back, and nothing tells a WAITING buyer the concert is sold out, so every loser
//           keeps an ACTIVE slot until active-ttl; a smaller max-active would freeze the line after
//           the sell-out. admission-rate paces the crowd: 1,000/s at full scale. At small scale it
//           is 2,000/s (200 buyers race for the seats in the first tick) because the server's ETA
//           right after an idle period follows an admission-rate average that starts near zero:
//           at 200/s, buyers behind the first ~500 were told Retry-After 29-30 s although the line
//           emptied in 3 s, and the small run took 30 s instead of 6.
// SLO       tickets_sold == SEATS exactly; every buyer ends paid or sold-out; no payment fails;
//           hold p95 < 300 ms, pay p95 < 500 ms, join p95 < 1 s; 409s on hold are expected.
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import { Api } from '../lib/api.js';
import { scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { journey } from '../lib/journey.js';
import { buildOptions } from '../lib/options.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';

const cfg = scenarioConfig('flash-sale');
const BUYERS = cfg.knob('BUYERS', 600);
const SEATS_TOTAL = cfg.totalSeats;

const saleAt = new Trend('flash_sale_paid_at', true); // ms since the crowd arrived, per ticket
const soldOutSeenAt = new Trend('flash_sale_sold_out_seen_at', true);
const unexpected = new Counter('flash_sale_unexpected_outcomes');

export const options = buildOptions({
  scenarios: {
    'flash-sale': {
      executor: 'per-vu-iterations',
      vus: BUYERS,
      iterations: 1,
      maxDuration: cfg.scale === 'full' ? '15m' : '90s',
      gracefulStop: '10s',
    },
  },
  slo: {
    join: { p95: 1000, p99: 2000 },
    status: { p95: 500, p99: 1000 },
    schedules: { p95: 300, p99: 1000 },
    seats: { p95: 300, p99: 1000 },
    hold: { p95: 300, p99: 1000 },
    pay: { p95: 500, p99: 1000 },
  },
  thresholds: {
    // the whole point: exactly the seat count, and every buyer ends paid or told "sold out"
    tickets_sold: [`count==${SEATS_TOTAL}`],
    journey_ok: ['rate==1'],
    flash_sale_unexpected_outcomes: ['count==0'],
  },
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);

export default function () {
  const r = journey(api, {
    user: fixtures.vuUser(0, 1),
    concert: 1,
    soldOutIsOk: true,
    maxQueueSeconds: cfg.scale === 'full' ? 600 : 60,
    // keep trying while the dates say seats are left: giving up early could leave a seat unsold
    maxAttempts: SEATS_TOTAL + 50,
    maxRefreshes: 100,
  });
  const at = Date.now() - exec.scenario.startTime;
  if (r.outcome === 'paid') saleAt.add(at);
  else if (r.outcome === 'sold_out') soldOutSeenAt.add(at);
  else unexpected.add(1, { outcome: r.outcome, reason: r.reason });
}

export const handleSummary = makeHandleSummary(cfg, (data) => {
  const sold = metricValue(data, 'tickets_sold', 'count') || 0;
  return {
    buyers: BUYERS,
    seats: SEATS_TOTAL,
    sold,
    soldEqualsSeats: sold === SEATS_TOTAL,
    soldOutSeenBy: metricValue(data, 'journeys_sold_out', 'count') || 0,
    failedBuyers: metricValue(data, 'journeys_failed', 'count') || 0,
    firstSaleMs: metricValue(data, 'flash_sale_paid_at', 'min'),
    timeToSellOutMs: metricValue(data, 'flash_sale_paid_at', 'max'),
    holdConflicts: metricValue(data, 'hold_conflicts', 'count') || 0,
    holdAttemptsP95: metricValue(data, 'journey_hold_attempts', 'p(95)'),
  };
});
