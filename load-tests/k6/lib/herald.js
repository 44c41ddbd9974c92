// Shared code of the k6 load tests: configuration, payload builders, the four request kinds
// (single, batch, get by id, paginated list) with their checks and tags, the SLA thresholds, the
// recipients' setup and the end-of-test summary. Every scenario file imports this module and only
// says how fast each request kind arrives over time.
//
// Environment (scripts/load-test.sh passes them with -e):
//   BASE_URL      the API, e.g. http://127.0.0.1:18380          (required)
//   API_KEY       a Bearer key of the tenant to load             (required)
//   RATE          requests/s over all four kinds; what it means per scenario is in its file
//   DURATION      how long the scenario runs (k6 duration: 90s, 2m, 30m)
//   MIX           shares of the rate: "single=0.5,batch=0.1,get=0.3,list=0.1"
//   BATCH_SIZE    notifications per batch request (default 10)
//   USERS         recipients created in setup() with PUT /v1/users (default 1000)
//   RUN_ID        names this run's recipients (default: the start time)
//   SUMMARY_FILE  where handleSummary writes k6's summary JSON (default: none)
import http from 'k6/http';
import { check, fail } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';

// The SLA, for every endpoint on its own.
export const SLA = { p95Ms: 100, p99Ms: 500, maxErrorRate: 0.01 };
export const ENDPOINTS = ['single', 'batch', 'get', 'list'];

function envNumber(name, fallback) {
  const text = __ENV[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${text} is not a number`);
  return value;
}

function parseMix(text) {
  const mix = { single: 0.5, batch: 0.1, get: 0.3, list: 0.1 };
  if (text) {
    for (const part of text.split(',')) {
      const [name, share] = part.split('=').map((s) => s.trim());
      if (!(name in mix) || !Number.isFinite(Number(share))) {
        throw new Error(`MIX: "${part}" is not <single|batch|get|list>=<share>`);
      }
      mix[name] = Number(share);
    }
  }
  const total = ENDPOINTS.reduce((sum, name) => sum + mix[name], 0);
  if (total <= 0) throw new Error('MIX: the shares add up to 0');
  for (const name of ENDPOINTS) mix[name] /= total;
  return mix;
}

export const config = {
  baseUrl: (__ENV.BASE_URL || '').replace(/\/+$/, ''),
  apiKey: __ENV.API_KEY || '',
  duration: __ENV.DURATION || '',
  rate: envNumber('RATE', 0),
  mix: parseMix(__ENV.MIX),
  batchSize: Math.max(1, Math.floor(envNumber('BATCH_SIZE', 10))),
  users: Math.max(1, Math.floor(envNumber('USERS', 1000))),
  runId: __ENV.RUN_ID || `${Date.now()}`,
  summaryFile: __ENV.SUMMARY_FILE || '',
};

const userPrefix = `k6-${config.runId}-`;
const jsonHeaders = {
  Authorization: `Bearer ${config.apiKey}`,
  'Content-Type': 'application/json',
};
const readHeaders = { Authorization: `Bearer ${config.apiKey}` };
const TIMEOUT = '10s';

// Notifications this run had accepted (2xx), counted per item, so the summary says how much was
// ingested, not only how many requests.
const notificationsAccepted = new Counter('notifications_accepted');

// ---------------------------------------------------------------------------------------------
// Scenario builders: constant or ramping arrival rates, one scenario per request kind, the rate
// split by MIX. VUs are sized for the rate: pre-allocated for the SLA's P99 (500 ms in flight per
// request), because starting VUs during the run costs k6 CPU exactly when the machine is busiest
// and showed up as dropped iterations while latencies were well inside the SLA; up to 2 s in
// flight. When even that is not enough k6 drops iterations, and the dropped_iterations threshold
// fails the run: the system did not keep up.

function vusFor(rate) {
  return {
    preAllocatedVUs: Math.max(2, Math.min(2000, Math.ceil(rate * 0.5))),
    maxVUs: Math.max(10, Math.min(4000, Math.ceil(rate * 2))),
  };
}

// k6 durations ("90s", "2m", "1h30m") in seconds, and back.
export function seconds(duration) {
  const parts = String(duration).match(/^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/);
  if (!parts || String(duration) === '') throw new Error(`"${duration}" is not a duration like 90s, 2m, 1h30m`);
  return (Number(parts[1] || 0) * 3600) + (Number(parts[2] || 0) * 60) + Number(parts[3] || 0);
}

export function duration(totalSeconds) {
  return `${Math.max(1, Math.round(totalSeconds))}s`;
}

function perKind(rate, kind) {
  return rate * config.mix[kind];
}

// One constant-arrival-rate scenario per request kind with a share > 0.
export function constantScenarios(rate, duration, startTime = '0s') {
  const scenarios = {};
  for (const kind of ENDPOINTS) {
    const kindRate = perKind(rate, kind);
    if (kindRate <= 0) continue;
    // k6 wants an integer rate: count per 10 s keeps a tenth of a request/s of precision.
    scenarios[kind] = {
      executor: 'constant-arrival-rate',
      exec: kind,
      rate: Math.max(1, Math.round(kindRate * 10)),
      timeUnit: '10s',
      duration,
      startTime,
      ...vusFor(kindRate),
      tags: { endpoint: kind },
    };
  }
  return scenarios;
}

// One ramping-arrival-rate scenario per request kind; stages give total rates (all kinds), each
// kind gets its MIX share of them.
export function rampingScenarios(startRate, stages) {
  const peak = Math.max(startRate, ...stages.map((s) => s.target));
  const scenarios = {};
  for (const kind of ENDPOINTS) {
    if (config.mix[kind] <= 0) continue;
    scenarios[kind] = {
      executor: 'ramping-arrival-rate',
      exec: kind,
      startRate: Math.round(perKind(startRate, kind) * 10),
      timeUnit: '10s',
      stages: stages.map((s) => ({ duration: s.duration, target: Math.round(perKind(s.target, kind) * 10) })),
      ...vusFor(perKind(peak, kind)),
      tags: { endpoint: kind },
    };
  }
  return scenarios;
}

// The SLA as thresholds, per endpoint (tag `endpoint`); k6 exits with 99 when one fails.
// `abortOnFail` stops the run at the first failure (after a grace period), for the smoke test.
export function slaThresholds({ abortOnFail = false, rate = 0 } = {}) {
  const bound = (expression) => (abortOnFail
    ? { threshold: expression, abortOnFail: true, delayAbortEval: '20s' }
    : expression);
  const thresholds = {
    // Every check (status codes, bodies) holds for at least 99% of the requests.
    checks: [bound('rate>0.99')],
  };
  for (const endpoint of ENDPOINTS) {
    if (config.mix[endpoint] <= 0) continue;
    thresholds[`http_req_duration{endpoint:${endpoint}}`] = [
      bound(`p(95)<${SLA.p95Ms}`),
      bound(`p(99)<${SLA.p99Ms}`),
    ];
    thresholds[`http_req_failed{endpoint:${endpoint}}`] = [bound(`rate<${SLA.maxErrorRate}`)];
  }
  // An arrival rate k6 could not offer (all VUs busy waiting for answers) is a failure too: it
  // means the system did not keep up, and latencies alone would hide it. At most 1% of the rate.
  if (rate > 0) {
    thresholds.dropped_iterations = [`rate<${Math.max(0.1, rate * SLA.maxErrorRate)}`];
  }
  return thresholds;
}

export function baseOptions(extra) {
  return {
    discardResponseBodies: false,
    summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
    // setup() creates the recipients; it may take a while on a loaded machine.
    setupTimeout: '120s',
    // Requests setup() makes are not the scenarios' traffic: they carry endpoint=setup.
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// Payloads.

function userId(index) {
  return `${userPrefix}${index}`;
}

function randomUser() {
  return userId(Math.floor(Math.random() * config.users));
}

const CHANNEL_SETS = [['email'], ['sms'], ['sms'], ['email', 'sms']];

let sequence = 0;
export function notificationPayload() {
  sequence += 1;
  const channels = CHANNEL_SETS[Math.floor(Math.random() * CHANNEL_SETS.length)];
  const payload = {
    user_ids: [randomUser()],
    channels,
    content: {
      subject: 'Pressure alert on {{machine}}',
      body: 'Pressure {{value}} bar on {{machine}} (reading {{reading}}).',
    },
    data: { value: 7 + (sequence % 5), machine: `press-${sequence % 17}`, reading: sequence },
    priority: sequence % 10 === 0 ? 'high' : 'normal',
  };
  // One in ten carries an idempotency key, so that path is under load too.
  if (sequence % 10 === 0) {
    payload.idempotency_key = `${userPrefix}${exec.vu.idInTest}-${exec.vu.iterationInInstance}-${sequence}`;
  }
  return payload;
}

export function batchPayload(size = config.batchSize) {
  const notifications = [];
  for (let i = 0; i < size; i += 1) notifications.push(notificationPayload());
  return { notifications };
}

function parse(response) {
  try {
    return response.json();
  } catch (_) {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Requests. Each is tagged with its endpoint (for the per-endpoint thresholds) and a `name` that
// groups URLs with ids in them.

export function postSingle() {
  const response = http.post(`${config.baseUrl}/v1/notifications`, JSON.stringify(notificationPayload()), {
    headers: jsonHeaders,
    tags: { endpoint: 'single', name: 'POST /v1/notifications' },
    timeout: TIMEOUT,
  });
  const body = parse(response);
  const ok = check(response, {
    'single: 202': (r) => r.status === 202,
    'single: has an id': () => Boolean(body && body.id),
  }, { endpoint: 'single' });
  if (ok) notificationsAccepted.add(1);
  return body;
}

export function postBatch() {
  const size = config.batchSize;
  const response = http.post(`${config.baseUrl}/v1/notifications/batch`, JSON.stringify(batchPayload(size)), {
    headers: jsonHeaders,
    tags: { endpoint: 'batch', name: 'POST /v1/notifications/batch' },
    timeout: TIMEOUT,
  });
  const body = parse(response);
  check(response, {
    'batch: 202': (r) => r.status === 202,
    'batch: every item accepted': () => Boolean(body) && body.accepted === size && body.rejected === 0,
  }, { endpoint: 'batch' });
  if (body && typeof body.accepted === 'number') notificationsAccepted.add(body.accepted);
  return body;
}

export function getNotification(id) {
  const response = http.get(`${config.baseUrl}/v1/notifications/${id}`, {
    headers: readHeaders,
    tags: { endpoint: 'get', name: 'GET /v1/notifications/{id}' },
    timeout: TIMEOUT,
  });
  const body = parse(response);
  check(response, {
    'get: 200': (r) => r.status === 200,
    'get: the same notification': () => Boolean(body) && body.id === id,
  }, { endpoint: 'get' });
  return body;
}

export function listPage(cursor, limit = 50, userIdFilter = null) {
  const query = [`limit=${limit}`];
  if (userIdFilter) query.push(`user_id=${encodeURIComponent(userIdFilter)}`);
  if (cursor) query.push(`cursor=${cursor}`);
  const response = http.get(`${config.baseUrl}/v1/notifications?${query.join('&')}`, {
    headers: readHeaders,
    tags: { endpoint: 'list', name: 'GET /v1/notifications' },
    timeout: TIMEOUT,
  });
  const body = parse(response);
  check(response, {
    'list: 200': (r) => r.status === 200,
    'list: a page': () => Boolean(body) && Array.isArray(body.items) && body.items.length <= limit,
  }, { endpoint: 'list' });
  return body;
}

// ---------------------------------------------------------------------------------------------
// The four scenario functions (`exec` of the scenarios above). k6 VUs share no memory, so the
// reading VUs learn ids of notifications this run created from the newest page of the list
// (only items addressed to this run's recipients), and refresh that pool every 25 reads: reads
// hit notifications that were accepted seconds ago, while they are being delivered.

const REFRESH_EVERY = 25;
let idPool = [];
let readsSinceRefresh = REFRESH_EVERY;

function refreshIdPool(data) {
  const page = listPage(null, 100);
  if (page && Array.isArray(page.items)) {
    const fresh = page.items
      .filter((item) => item.user_ids && item.user_ids.some((u) => u.startsWith(userPrefix)))
      .map((item) => item.id);
    if (fresh.length > 0) idPool = fresh;
  }
  if (idPool.length === 0) idPool = data.seedIds.slice();
  readsSinceRefresh = 0;
}

export function single() {
  postSingle();
}

export function batch() {
  postBatch();
}

export function get(data) {
  if (readsSinceRefresh >= REFRESH_EVERY || idPool.length === 0) refreshIdPool(data);
  readsSinceRefresh += 1;
  getNotification(idPool[Math.floor(Math.random() * idPool.length)]);
}

// Walks the list newest first, following next_cursor for up to five pages, then starts again.
// Every fourth walk is one recipient's notifications (`user_id=`, the GIN index on user_ids), the
// others the whole tenant's.
const PAGES_PER_WALK = 5;
let listCursor = null;
let pagesWalked = 0;
let walks = 0;
let walkUser = null;

export function list() {
  if (pagesWalked === 0) {
    walks += 1;
    walkUser = walks % 4 === 0 ? randomUser() : null;
  }
  const page = listPage(listCursor, 50, walkUser);
  pagesWalked += 1;
  listCursor = page && page.next_cursor && pagesWalked < PAGES_PER_WALK ? page.next_cursor : null;
  if (!listCursor) pagesWalked = 0;
}

// ---------------------------------------------------------------------------------------------
// setup(): the recipients (PUT /v1/users/{id}, USERS of them, with an email address and a phone
// number each) and a few notifications to them, so reads have ids from the first second on.

export function setupRun() {
  // Checked here, not at init: `k6 archive` runs the init code without them (a k6-operator
  // TestRun's runners get them at run time, the API key from a Secret: load-tests/k8s/).
  if (!config.baseUrl || !config.apiKey) {
    throw new Error('BASE_URL and API_KEY must be set (scripts/load-test.sh sets them)');
  }
  const started = Date.now();
  const params = { headers: jsonHeaders, tags: { endpoint: 'setup', name: 'PUT /v1/users/{id}' }, timeout: '30s' };
  const chunk = 50;
  for (let first = 0; first < config.users; first += chunk) {
    const requests = [];
    for (let i = first; i < Math.min(first + chunk, config.users); i += 1) {
      const phone = `+1415${String(5000000 + (i % 4999999)).padStart(7, '0')}`;
      requests.push(['PUT', `${config.baseUrl}/v1/users/${userId(i)}`,
        JSON.stringify({ email: `k6-${i}@example.com`, phone, locale: 'en-US', timezone: 'Europe/Berlin' }),
        params]);
    }
    const responses = http.batch(requests);
    const failed = responses.filter((r) => r.status !== 200);
    if (failed.length > 0) {
      fail(`setup: PUT /v1/users answered ${failed[0].status} (${failed.length} of ${responses.length}): ${failed[0].body}`);
    }
  }
  const seed = http.post(`${config.baseUrl}/v1/notifications/batch`, JSON.stringify(batchPayload(20)),
    { headers: jsonHeaders, tags: { endpoint: 'setup', name: 'POST /v1/notifications/batch' }, timeout: '30s' });
  const body = parse(seed);
  if (seed.status !== 202 || !body || !Array.isArray(body.results)) {
    fail(`setup: the seed batch answered ${seed.status}: ${seed.body}`);
  }
  const seedIds = body.results.filter((r) => r.id).map((r) => r.id);
  console.log(`setup: ${config.users} recipients (${userPrefix}*) and ${seedIds.length} seed notifications in ${Date.now() - started} ms`);
  return { seedIds };
}

// ---------------------------------------------------------------------------------------------
// End of test: k6's summary JSON to SUMMARY_FILE, and a short per-endpoint table on stdout.

function metricValues(data, name) {
  return (data.metrics[name] && data.metrics[name].values) || null;
}

function thresholdsFailed(data) {
  const failed = [];
  for (const [name, metric] of Object.entries(data.metrics)) {
    for (const [expression, result] of Object.entries(metric.thresholds || {})) {
      if (!result.ok) failed.push(`${name}: ${expression}`);
    }
  }
  return failed;
}

function pad(text, width) {
  const s = String(text);
  return s.length >= width ? s : ' '.repeat(width - s.length) + s;
}

export function summaryTable(data) {
  const seconds = data.state.testRunDurationMs / 1000;
  const lines = [];
  lines.push(`${'endpoint'.padEnd(10)}${pad('requests', 10)}${pad('req/s', 9)}${pad('p50 ms', 9)}${pad('p95 ms', 9)}${pad('p99 ms', 9)}${pad('max ms', 10)}${pad('errors', 9)}`);
  for (const endpoint of ENDPOINTS) {
    const duration = metricValues(data, `http_req_duration{endpoint:${endpoint}}`);
    const failed = metricValues(data, `http_req_failed{endpoint:${endpoint}}`);
    if (!duration || !failed) continue;
    const count = (failed.passes || 0) + (failed.fails || 0);
    lines.push(`${endpoint.padEnd(10)}${pad(count, 10)}${pad((count / seconds).toFixed(1), 9)}`
      + `${pad(duration.med.toFixed(1), 9)}${pad(duration['p(95)'].toFixed(1), 9)}${pad(duration['p(99)'].toFixed(1), 9)}`
      + `${pad(duration.max.toFixed(0), 10)}${pad(`${(failed.rate * 100).toFixed(2)}%`, 9)}`);
  }
  const all = metricValues(data, 'http_reqs');
  const accepted = metricValues(data, 'notifications_accepted');
  const dropped = metricValues(data, 'dropped_iterations');
  if (runPlan.shape) lines.push(`offered: ${runPlan.shape}`);
  lines.push(`all requests: ${all ? all.count : 0} (${all ? all.rate.toFixed(1) : 0}/s, setup included); `
    + `notifications accepted: ${accepted ? accepted.count : 0} (${accepted ? accepted.rate.toFixed(1) : 0}/s); `
    + `dropped iterations: ${dropped ? dropped.count : 0}`);
  const failed = thresholdsFailed(data);
  lines.push(failed.length === 0 ? 'SLA thresholds: all passed' : `SLA thresholds FAILED:\n  ${failed.join('\n  ')}`);
  return lines.join('\n');
}

// What the scenario file offers (rate, shape), for the summary.
let runPlan = {};
export function describePlan(plan) {
  runPlan = plan;
}

export function handleSummary(data) {
  const output = { stdout: `\n${summaryTable(data)}\n` };
  if (config.summaryFile) {
    // What was offered, beside what k6 measured.
    const herald = {
      scenario: __ENV.SCENARIO || '', base_url: config.baseUrl, ...runPlan, mix: config.mix, batch_size: config.batchSize,
      users: config.users, sla: SLA, thresholds_failed: thresholdsFailed(data),
    };
    output[config.summaryFile] = JSON.stringify({ herald, ...data }, null, 2);
  }
  return output;
}
