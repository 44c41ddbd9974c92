// Parses PromQL with Prometheus's own grammar (@prometheus-io/lezer-promql, the parser of the
// Prometheus web UI) and lists each expression's series selectors and aggregations.
//
//   echo '["sum(rate(x{a=\"b\"}[5m]))"]' | node grafana/tools/promql-selectors.mjs
//   -> [{"errors": [], "selectors": [{"text": "x{a=\"b\"}", "name": "x",
//        "matchers": [{"label": "a", "op": "=", "value": "b"}]}],
//        "aggregations": [{"text": "sum(rate(x{a=\"b\"}[5m]))", "op": "sum", "modifier": null, "labels": []}]}]
// An aggregation's modifier is "by", "without" or null (neither: every label is dropped).
import { parser } from '@prometheus-io/lezer-promql';
import fs from 'node:fs';

function unquote(literal) {
  const quote = literal[0];
  const body = literal.slice(1, -1);
  if (quote === '`') return body;
  // Go-style escapes: \\ \" \' \n \t; anything else (a regex's \.) stays as written.
  return body.replace(/\\(["'\\nt])/g, (_, c) => ({ n: '\n', t: '\t' })[c] ?? c);
}

function analyse(expr) {
  const tree = parser.parse(expr);
  const errors = [];
  const selectors = [];
  const aggregations = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        errors.push(`syntax error at ${node.from}: ${JSON.stringify(expr.slice(Math.max(0, node.from - 20), node.to + 20))}`);
        return;
      }
      if (node.name === 'AggregateExpr') {
        const op = node.node.getChild('AggregateOp');
        const modifier = node.node.getChild('AggregateModifier');
        const labels = [];
        let kind = null;
        if (modifier) {
          kind = modifier.getChild('By') ? 'by' : 'without';
          const grouping = modifier.getChild('GroupingLabels');
          for (const label of grouping ? grouping.getChildren('LabelName') : []) {
            labels.push(expr.slice(label.from, label.to));
          }
        }
        aggregations.push({
          text: expr.slice(node.from, node.to),
          op: op ? expr.slice(op.from, op.to) : null,
          modifier: kind,
          labels,
        });
        return;
      }
      if (node.name !== 'VectorSelector') return;
      const selector = { text: expr.slice(node.from, node.to), name: null, matchers: [] };
      const cursor = node.node.cursor();
      cursor.iterate((child) => {
        if (child.name === 'Identifier' && child.node.parent?.name === 'VectorSelector') {
          selector.name = expr.slice(child.from, child.to);
        }
        if (child.name === 'UnquotedLabelMatcher' || child.name === 'QuotedLabelMatcher') {
          const get = (name) => {
            const n = child.node.getChild(name);
            return n ? expr.slice(n.from, n.to) : null;
          };
          const label = get('LabelName') ?? (get('QuotedLabelName') && unquote(get('QuotedLabelName')));
          const op = get('MatchOp');
          const value = get('StringLiteral');
          selector.matchers.push({ label, op, value: value === null ? null : unquote(value) });
        }
        if (child.name === 'QuotedLabelName' && child.node.parent?.name === 'LabelMatchers') {
          selector.name = unquote(expr.slice(child.from, child.to));
        }
      });
      const byName = selector.matchers.find((m) => m.label === '__name__' && m.op === '=');
      if (!selector.name && byName) selector.name = byName.value;
      selectors.push(selector);
      return false;
    },
  });
  return { errors, selectors, aggregations };
}

const exprs = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(exprs.map(analyse)));
