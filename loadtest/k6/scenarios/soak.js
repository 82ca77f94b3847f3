// soak — a steady, moderate load for a long time, to catch what only time reveals.
//
// Purpose   Leaks and drift: memory or file descriptors that grow, a seat snapshot or a queue
//           structure that never shrinks, holds that are never swept, tokens that never expire,
//           latencies that creep up. Open model (constant-arrival-rate): RATE journeys/s for
//           DURATION (default 10 min at full scale, 12 s at small — small only proves the script).
// Traffic   The buyer journey of journey.js, one new seeded user per arrival; ABANDON_RATE (10%)
//           of the people walk away after holding a seat, so holds expire (hold-ttl is short here)
//           and the sweeper and the "expired hold frees the seat" path run all the time, and their
//           tokens run out at active-ttl (also short) instead of being ended by a payment.
//           Every metric is tagged with phase early (first 20%), middle, late (last 20%).
// Why these The same mix as journey.js plus the two clean-up paths (hold expiry, token expiry) that
//           a short test never reaches.
// Bottleneck None expected at this rate; the question is whether late looks like early. The
//           runner's resources.csv (RSS, fds, threads over time) is the other half of the verdict.
// Server    seed: seats >= RATE x DURATION x (1 - ABANDON_RATE) (abandoned seats come back).
//           serve: hold-ttl short (3 s small, 30 s full), active-ttl short (20 s small, 2 m full) so
//           abandoned slots return to the line; sweep-interval 1 s.
// SLO       the journey SLOs (lib/slo.js) over the whole run AND for the late phase alone
//           (http p95 < 200 ms among people arriving in the last 20%); >= 99% journeys paid or
//           abandoned on purpose; time in queue p95 < 5 s; no dropped arrivals.
import { Api } from '../lib/api.js';
import { durationSeconds, scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { journey } from '../lib/journey.js';
import { buildOptions } from '../lib/options.js';
import { tagPhase } from '../lib/phases.js';
import { journeyExtras, journeySlo } from '../lib/slo.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';

const cfg = scenarioConfig('soak');
const RATE = cfg.knob('RATE', 8);
const DURATION = cfg.knob('DURATION', cfg.scale === 'full' ? '10m' : '12s');
const ABANDON = cfg.knob('ABANDON_RATE', 0.1);
const total = durationSeconds(DURATION);
const PHASES = [
  { name: 'early', seconds: total * 0.2 },
  { name: 'middle', seconds: total * 0.6 },
  { name: 'late', seconds: total * 0.2 },
];

const byPhase = {};
for (const p of ['early', 'middle', 'late']) {
  byPhase[`http_req_duration{phase:${p}}`] = p === 'late' ? ['p(95)<200'] : ['max>=0'];
  byPhase[`journey_duration{phase:${p}}`] = ['max>=0'];
  byPhase[`journey_time_in_queue{phase:${p}}`] = p === 'late' ? ['p(95)<5000'] : ['max>=0'];
}

export const options = buildOptions({
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: cfg.knob('PRE_VUS', 20),
      maxVUs: cfg.knob('MAX_VUS', 100),
      gracefulStop: '30s',
    },
  },
  slo: journeySlo(),
  thresholds: Object.assign(
    {
      journey_ok: ['rate>0.99'],
      journey_time_in_queue: ['p(95)<5000'],
      dropped_iterations: ['count==0'],
    },
    byPhase,
  ),
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);

export default function () {
  tagPhase(PHASES);
  journey(api, { user: fixtures.arrivalUser(), concert: fixtures.randomConcert(), abandonRate: ABANDON });
}

export const handleSummary = makeHandleSummary(cfg, (data) => {
  const out = journeyExtras(data);
  out.abandoned = metricValue(data, 'journeys_abandoned', 'count') || 0;
  const p = (ph, m) => metricValue(data, `${m}{phase:${ph}}`, 'p(95)');
  out.httpP95msEarly = p('early', 'http_req_duration');
  out.httpP95msLate = p('late', 'http_req_duration');
  out.journeyP95msEarly = p('early', 'journey_duration');
  out.journeyP95msLate = p('late', 'journey_duration');
  if (out.httpP95msEarly && out.httpP95msLate) out.lateOverEarlyHttpP95 = Number((out.httpP95msLate / out.httpP95msEarly).toFixed(2));
  return out;
});
