// Stress: ramps the arrival rate from half of RATE to twice RATE, where RATE is the capacity
// (default below): finds where the SLA breaks and how the system degrades (latency, 503s, dropped
// iterations) instead of falling over. The thresholds are expected to fail in the upper stages;
// the run is never aborted, and the summary says which failed. DURATION (default 10m) is split:
// 10% at half, ramps to 1x, 1.5x and 2x RATE, holding each, then back down to half.
import { config, describePlan, rampingScenarios, slaThresholds, baseOptions, setupRun, duration, seconds } from './lib/herald.js';

export { single, batch, get, list, handleSummary } from './lib/herald.js';

// The measured capacity (load-tests/README.md, "Capacity").
export const CAPACITY_RATE = 250;
const rate = config.rate || CAPACITY_RATE;
const total = seconds(config.duration || '10m');
const at = (share) => duration(total * share);

describePlan({
  rate, duration: duration(total),
  shape: `ramping ${rate * 0.5} -> ${rate} -> ${rate * 1.5} -> ${rate * 2} -> ${rate * 0.5} req/s over ${duration(total)}`,
});

export const options = baseOptions({
  scenarios: rampingScenarios(rate * 0.5, [
    { duration: at(0.10), target: rate * 0.5 },
    { duration: at(0.10), target: rate },
    { duration: at(0.15), target: rate },
    { duration: at(0.10), target: rate * 1.5 },
    { duration: at(0.15), target: rate * 1.5 },
    { duration: at(0.10), target: rate * 2 },
    { duration: at(0.15), target: rate * 2 },
    { duration: at(0.05), target: rate * 0.5 },
    { duration: at(0.10), target: rate * 0.5 },
  ]),
  thresholds: slaThresholds({ rate }),
});

export function setup() {
  return setupRun();
}
