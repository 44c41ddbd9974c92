// Spike: a steady RATE (default below), then within 5 s SPIKE_FACTOR times it (default 8), held
// for a fifth of DURATION, then back to RATE: shows what a sudden burst does to latency and errors
// and how fast the system recovers. The spike goes beyond capacity, so the thresholds may fail;
// the run is never aborted. DURATION (default 5m): 30% steady, the spike, 45% recovery.
import { config, describePlan, rampingScenarios, slaThresholds, baseOptions, setupRun, duration, seconds } from './lib/herald.js';

export { single, batch, get, list, handleSummary } from './lib/herald.js';

// Under half of the measured capacity (250 req/s); the spike goes to 8x it, about 3x capacity.
export const SPIKE_BASE_RATE = 100;
const rate = config.rate || SPIKE_BASE_RATE;
const factor = Number(__ENV.SPIKE_FACTOR || 8);
const total = seconds(config.duration || '5m');
const at = (share) => duration(total * share);

describePlan({
  rate, spike_factor: factor, duration: duration(total),
  shape: `${rate} req/s, within 5 s ${rate * factor} req/s for ${at(0.20)}, back to ${rate} req/s`,
});

export const options = baseOptions({
  scenarios: rampingScenarios(rate, [
    { duration: at(0.30), target: rate },
    { duration: '5s', target: rate * factor },
    { duration: at(0.20), target: rate * factor },
    { duration: '5s', target: rate },
    { duration: at(0.45), target: rate },
  ]),
  thresholds: slaThresholds({ rate }),
});

export function setup() {
  return setupRun();
}
