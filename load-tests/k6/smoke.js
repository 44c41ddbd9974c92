// Smoke: a minute at a low rate, every endpoint, the full SLA. Part of `make test` (and CI), so it
// must pass on a busy 2-core machine: the rate is a small fraction of capacity, and the run is
// never aborted early (a p99 over the first few hundred requests is one slow request, e.g. a
// cold connection pool; over the whole minute it is a real finding).
// RATE (default 20 req/s over all endpoints), DURATION (1m).
import { config, describePlan, constantScenarios, slaThresholds, baseOptions, setupRun } from './lib/herald.js';

export { single, batch, get, list, handleSummary } from './lib/herald.js';

const rate = config.rate || 20;

describePlan({ rate, duration: config.duration || '1m', shape: `${rate} req/s constant for ${config.duration || '1m'}` });

export const options = baseOptions({
  scenarios: constantScenarios(rate, config.duration || '1m'),
  thresholds: slaThresholds({ rate }),
});

export function setup() {
  return setupRun();
}
