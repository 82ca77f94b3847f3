// Tag every metric of an iteration with the phase of the test in which the person ARRIVED
// (by wall clock since the scenario started), so thresholds can ask "did people who arrived after
// the spike get the baseline experience?" — e.g. http_req_duration{phase:tail}.
import exec from 'k6/execution';
import { durationSeconds } from './config.js';

// phases: [{ name, seconds }] in order; time past the last phase keeps the last name.
export function phaseAt(phases, elapsedSeconds) {
  let t = 0;
  for (const p of phases) {
    t += p.seconds;
    if (elapsedSeconds < t) return p.name;
  }
  return phases[phases.length - 1].name;
}

export function tagPhase(phases, tag = 'phase') {
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  const name = phaseAt(phases, elapsed);
  exec.vu.metrics.tags[tag] = name;
  return name;
}

export function phasesFrom(list) {
  return list.map(([name, d]) => ({ name, seconds: durationSeconds(d) }));
}
