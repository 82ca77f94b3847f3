// peak — baseline arrivals, ten times that within seconds, back to baseline: does it recover?
//
// Purpose   The on-sale opening as a curve: BASE_RATE journeys/s for BASELINE, ramp to
//           PEAK_RATE (10x) over RAMP_UP (10 s at full scale), hold for PEAK, ramp back down over
//           RAMP_DOWN, then BASE_RATE again for RECOVERY. Open model (ramping-arrival-rate): the
//           spike must arrive whether or not the server is keeping up.
// Traffic   The buyer journey of journey.js (join, poll honouring Retry-After, dates, seats, hold,
//           charge if short, pay), one new seeded user per arrival. Every metric is tagged with the
//           phase in which that person ARRIVED: baseline, spike (ramp up + peak + ramp down),
//           recovery, tail (the last TAIL seconds of the recovery).
// Why these The spike is what the waiting room exists for: admission-rate is set BELOW the peak
//           arrival rate on purpose, so a line builds during the spike and must drain afterwards,
//           while the API itself stays fast.
// Bottleneck Join writes at the spike (single SQLite writer) and the admission rate; the queue
//           absorbs the excess as time in queue, not as errors.
// Server    seed: USERS and seats >= all arrivals. serve: admission-rate (per concert) x CONCERTS
//           between BASE_RATE and PEAK_RATE (small: 20/s vs 4 -> 40/s; full: 3 x 50/s vs 20 -> 200/s).
// SLO       whole run: the journey endpoint SLOs (lib/slo.js) and < 1% errors; >= 99% journeys
//           paid; recovery: people arriving in the tail wait in line no longer than the baseline
//           allows (time in queue p95 < 5 s) and see baseline latencies (http p95 < 200 ms).
import { Api } from '../lib/api.js';
import { scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { journey } from '../lib/journey.js';
import { buildOptions } from '../lib/options.js';
import { phasesFrom, tagPhase } from '../lib/phases.js';
import { journeyExtras, journeySlo } from '../lib/slo.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';

const cfg = scenarioConfig('peak');
const BASE = cfg.knob('BASE_RATE', 4);
const PEAK = cfg.knob('PEAK_RATE', 40);
const D = {
  baseline: cfg.knob('BASELINE', '3s'),
  up: cfg.knob('RAMP_UP', '2s'),
  peak: cfg.knob('PEAK', '2s'),
  down: cfg.knob('RAMP_DOWN', '2s'),
  recovery: cfg.knob('RECOVERY', '5s'),
  tail: cfg.knob('TAIL', '2s'),
};

const phasesList = phasesFrom([
  ['baseline', D.baseline],
  ['spike', D.up],
  ['spike', D.peak],
  ['spike', D.down],
  ['recovery', D.recovery],
]);
// carve the tail out of the end of the recovery
const rec = phasesList[phasesList.length - 1];
const tailSeconds = Math.min(phasesFrom([['tail', D.tail]])[0].seconds, rec.seconds);
rec.seconds -= tailSeconds;
phasesList.push({ name: 'tail', seconds: tailSeconds });

const PHASES = ['baseline', 'spike', 'recovery', 'tail'];
const byPhase = {};
for (const p of PHASES) {
  byPhase[`journey_time_in_queue{phase:${p}}`] = p === 'tail' ? ['p(95)<5000'] : ['max>=0'];
  byPhase[`http_req_duration{phase:${p}}`] = p === 'tail' ? ['p(95)<200'] : ['max>=0'];
  byPhase[`journeys_started{phase:${p}}`] = ['count>=0'];
}

export const options = buildOptions({
  scenarios: {
    peak: {
      executor: 'ramping-arrival-rate',
      startRate: BASE,
      timeUnit: '1s',
      preAllocatedVUs: cfg.knob('PRE_VUS', 40),
      maxVUs: cfg.knob('MAX_VUS', 300),
      stages: [
        { target: BASE, duration: D.baseline },
        { target: PEAK, duration: D.up },
        { target: PEAK, duration: D.peak },
        { target: BASE, duration: D.down },
        { target: BASE, duration: D.recovery },
      ],
      gracefulStop: '60s',
    },
  },
  slo: journeySlo(),
  thresholds: Object.assign(
    {
      journey_ok: ['rate>0.99'],
      dropped_iterations: ['count==0'],
    },
    byPhase,
  ),
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl);

export default function () {
  tagPhase(phasesList);
  journey(api, { user: fixtures.arrivalUser(), concert: fixtures.randomConcert() });
}

export const handleSummary = makeHandleSummary(cfg, (data) => {
  const out = journeyExtras(data);
  out.baseRate = BASE;
  out.peakRate = PEAK;
  out.admissionRatePerConcert = cfg.serve['admission-rate'];
  out.byPhase = {};
  for (const p of PHASES) {
    out.byPhase[p] = {
      arrivals: metricValue(data, `journeys_started{phase:${p}}`, 'count') || 0,
      timeInQueueP95ms: metricValue(data, `journey_time_in_queue{phase:${p}}`, 'p(95)'),
      timeInQueueMaxMs: metricValue(data, `journey_time_in_queue{phase:${p}}`, 'max'),
      httpP95ms: metricValue(data, `http_req_duration{phase:${p}}`, 'p(95)'),
    };
  }
  const tail = out.byPhase.tail;
  const base = out.byPhase.baseline;
  out.recovered = Boolean(tail.arrivals) && tail.timeInQueueP95ms < 5000 && tail.httpP95ms < 200;
  if (base.timeInQueueP95ms && tail.timeInQueueP95ms) out.tailVsBaselineQueueP95 = Number((tail.timeInQueueP95ms / base.timeInQueueP95ms).toFixed(2));
  return out;
});
