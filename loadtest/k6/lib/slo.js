// The SLOs of the booking journey, shared by journey, peak, stress and soak so they agree.
// Latencies in ms, measured by k6 on the same 2 cores as the server (so they include k6's own
// scheduling delay: a real client on another machine would see less).
import { ROUTES } from './api.js';
import { metricValue } from './summary.js';

export const JOURNEY_SLO = {
  join: { p95: 200, p99: 500 },
  status: { p95: 100, p99: 250 },
  schedules: { p95: 100, p99: 250 },
  seats: { p95: 100, p99: 250 },
  hold: { p95: 200, p99: 500 },
  balance: { p95: 100, p99: 250 },
  charge: { p95: 200, p99: 500 },
  pay: { p95: 300, p99: 750 },
};

// A copy (callers may loosen or tighten one endpoint).
export function journeySlo() {
  return JSON.parse(JSON.stringify(JOURNEY_SLO));
}

// Figures every journey-style summary reports.
export function journeyExtras(data) {
  const secs = (data.state.testRunDurationMs || 1) / 1000;
  const completed = metricValue(data, 'journeys_completed', 'count') || 0;
  const out = {
    journeysStarted: metricValue(data, 'journeys_started', 'count') || 0,
    journeysCompleted: completed,
    journeysPerSecond: Number((completed / secs).toFixed(2)),
    journeysFailed: metricValue(data, 'journeys_failed', 'count') || 0,
    droppedArrivals: metricValue(data, 'dropped_iterations', 'count') || 0,
    timeInQueueP95ms: metricValue(data, 'journey_time_in_queue', 'p(95)'),
    journeyP95ms: metricValue(data, 'journey_duration', 'p(95)'),
    requestsPerSecond: Number((metricValue(data, 'http_reqs', 'rate') || 0).toFixed(1)),
  };
  const pay = metricValue(data, `http_req_duration{name:${ROUTES.pay}}`, 'p(95)');
  if (pay !== undefined) out.payP95ms = pay;
  return out;
}
