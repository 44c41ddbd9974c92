// Soak: half of the capacity (default below), constant, for DURATION (default 30m); the SLA must
// hold to the end. scripts/load-test.sh samples RSS and open file descriptors of every process
// meanwhile (load-tests/results/soak-resources.json): they must stay flat.
import { config, describePlan, constantScenarios, slaThresholds, baseOptions, setupRun } from './lib/herald.js';

export { single, batch, get, list, handleSummary } from './lib/herald.js';

// Half of the measured capacity (250 req/s, load-tests/README.md, "Capacity").
export const SOAK_RATE = 125;
const rate = config.rate || SOAK_RATE;

describePlan({ rate, duration: config.duration || '30m', shape: `${rate} req/s constant for ${config.duration || '30m'}` });

export const options = baseOptions({
  scenarios: constantScenarios(rate, config.duration || '30m'),
  thresholds: slaThresholds({ rate }),
});

export function setup() {
  return setupRun();
}
