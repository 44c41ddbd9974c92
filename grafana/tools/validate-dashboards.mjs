// Validates dashboards against Grafana's published schema, from the npm package @grafana/schema
// (pinned in package.json): the TypeScript types Grafana generates from its CUE schemas are turned
// into JSON Schema (ts-json-schema-generator, no extra properties allowed) and every dashboard is
// checked with ajv:
//   - the dashboard itself against `Dashboard` (raw/dashboard/x), each row against `RowPanel` and
//     each panel against `Panel`;
//   - each panel's `options` against its plugin's `Options` and `fieldConfig.defaults.custom`
//     against its plugin's `FieldConfig` (raw/composable/<plugin>/panelcfg/x);
//   - each query against `PrometheusQuery` (prometheus-query.d.ts: Grafana's DataQuery plus the
//     Prometheus data source's fields).
// Then what no schema says but Grafana relies on: unique panel ids, panels inside the 24-column
// grid, every query on the data source variable, unique refIds, variables that exist.
//
//   node grafana/tools/validate-dashboards.mjs grafana/dashboards/*.json
import { createGenerator } from 'ts-json-schema-generator';
import Ajv from 'ajv';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const schemaPackage = path.join(here, 'node_modules/@grafana/schema');
const schemaVersion = JSON.parse(fs.readFileSync(path.join(schemaPackage, 'package.json'))).version;
const raw = path.join(schemaPackage, 'dist/types/raw');
const tsconfig = path.join(here, 'tsconfig.json');

function schemasFor(file, types) {
  const generator = createGenerator({
    path: file,
    tsconfig,
    skipTypeCheck: true,
    additionalProperties: false,
    topRef: false,
  });
  return Object.fromEntries(types.map((type) => [type, generator.createSchema(type)]));
}

const ajv = new Ajv({ allErrors: true, strict: false });
const compile = (schema) => ajv.compile(schema);

const dashboardSchemas = schemasFor(path.join(raw, 'dashboard/x/types.gen.d.ts'), ['Dashboard', 'Panel', 'RowPanel']);
const validateDashboard = compile(dashboardSchemas.Dashboard);
const validatePanel = compile(dashboardSchemas.Panel);
const validateRow = compile(dashboardSchemas.RowPanel);
const validateQuery = compile(
  schemasFor(path.join(here, 'prometheus-query.d.ts'), ['PrometheusQuery']).PrometheusQuery,
);

const pluginValidators = new Map();
function pluginValidator(type) {
  if (!pluginValidators.has(type)) {
    const file = path.join(raw, 'composable', type, 'panelcfg/x/types.gen.d.ts');
    if (!fs.existsSync(file)) {
      pluginValidators.set(type, null);
    } else {
      const source = fs.readFileSync(file, 'utf8');
      const types = ['Options'].concat(/export interface FieldConfig\b/.test(source) ? ['FieldConfig'] : []);
      const schemas = schemasFor(file, types);
      pluginValidators.set(type, {
        options: compile(schemas.Options),
        fieldConfig: schemas.FieldConfig ? compile(schemas.FieldConfig) : null,
      });
    }
  }
  return pluginValidators.get(type);
}

function describe(errors) {
  return errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? `: ${e.params.additionalProperty}` : ''}${e.params?.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}`);
}

let failures = 0;
let checkedPanels = 0;
let checkedQueries = 0;
for (const file of process.argv.slice(2)) {
  const problems = [];
  const dashboard = JSON.parse(fs.readFileSync(file, 'utf8'));
  const panels = dashboard.panels ?? [];
  if (!validateDashboard({ ...dashboard, panels: [] })) problems.push(...describe(validateDashboard.errors));

  const variables = new Set((dashboard.templating?.list ?? []).map((v) => v.name));
  const builtins = new Set(['__rate_interval', '__interval', '__range', '__interval_ms', '__range_s', '__range_ms', '__from', '__to']);
  const usedVariables = (text) => [...text.matchAll(/\$\{?(\w+)/g)].map((m) => m[1]).filter((n) => !builtins.has(n));
  for (const variable of dashboard.templating?.list ?? []) {
    for (const name of usedVariables(JSON.stringify(variable.query ?? ''))) {
      if (!variables.has(name)) problems.push(`variable ${variable.name}: uses $${name}, which is not a variable`);
    }
  }
  if (!dashboard.uid || dashboard.uid.length > 40) problems.push('uid: missing or longer than 40 characters');

  const ids = new Set();
  const flat = panels.flatMap((p) => (p.type === 'row' ? [p, ...(p.panels ?? [])] : [p]));
  for (const panel of flat) {
    const where = `panel ${panel.id} "${panel.title}"`;
    if (ids.has(panel.id)) problems.push(`${where}: id used twice`);
    ids.add(panel.id);
    const g = panel.gridPos;
    if (!g || g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) problems.push(`${where}: gridPos outside the 24-column grid`);
    if (panel.type === 'row') {
      if (!validateRow({ ...panel, panels: [] })) problems.push(...describe(validateRow.errors).map((e) => `${where}: ${e}`));
      continue;
    }
    checkedPanels += 1;
    if (!validatePanel(panel)) problems.push(...describe(validatePanel.errors).map((e) => `${where}: ${e}`));
    const plugin = pluginValidator(panel.type);
    if (plugin === null) {
      problems.push(`${where}: panel type ${panel.type} has no schema in @grafana/schema`);
    } else {
      if (panel.options && !plugin.options(panel.options)) {
        problems.push(...describe(plugin.options.errors).map((e) => `${where}: options${e}`));
      }
      const custom = panel.fieldConfig?.defaults?.custom;
      if (custom && plugin.fieldConfig && !plugin.fieldConfig(custom)) {
        problems.push(...describe(plugin.fieldConfig.errors).map((e) => `${where}: fieldConfig.defaults.custom${e}`));
      }
    }
    if (panel.datasource?.uid !== '${datasource}') problems.push(`${where}: datasource is not the $datasource variable`);
    const refIds = new Set();
    for (const target of panel.targets ?? []) {
      checkedQueries += 1;
      if (!validateQuery(target)) problems.push(...describe(validateQuery.errors).map((e) => `${where} query ${target.refId}: ${e}`));
      if (refIds.has(target.refId)) problems.push(`${where}: refId ${target.refId} used twice`);
      refIds.add(target.refId);
      for (const name of usedVariables(target.expr ?? '')) {
        if (!variables.has(name)) problems.push(`${where} query ${target.refId}: uses $${name}, which is not a variable`);
      }
    }
    if ((panel.targets ?? []).length === 0 && panel.type !== 'text') problems.push(`${where}: no query`);
  }

  if (problems.length) {
    failures += 1;
    console.log(`FAIL ${file}`);
    for (const problem of problems) console.log(`  ${problem}`);
  } else {
    console.log(`ok   ${file}: valid against @grafana/schema ${schemaVersion} (${flat.length} panels)`);
  }
}
console.log(`schema: ${checkedPanels} panels and ${checkedQueries} queries checked, ${failures} dashboard(s) invalid`);
process.exit(failures ? 1 : 0);
