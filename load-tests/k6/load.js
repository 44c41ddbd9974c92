// Load: the expected production level, constant, well inside capacity; the SLA must hold.
// RATE (req/s over all endpoints, default LOAD_RATE below), DURATION (default 5m).
import { config, describePlan, constantScenarios, slaThresholds, baseOptions, setupRun } from './lib/herald.js';

export { single, batch, get, list, handleSummary } from './lib/herald.js';

// Inside what the 2-core development machine sustained within the SLA while shared with builds
// and other stacks (250 req/s, load-tests/README.md, "Capacity"). Raise it with RATE on a machine
// of its own.
export const LOAD_RATE = 200;
const rate = config.rate || LOAD_RATE;

describePlan({ rate, duration: config.duration || '5m', shape: `${rate} req/s constant for ${config.duration || '5m'}` });

export const options = baseOptions({
  scenarios: constantScenarios(rate, config.duration || '5m'),
  thresholds: slaThresholds({ rate }),
});

export function setup() {
  return setupRun();
}
