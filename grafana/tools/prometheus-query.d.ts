// The query of a panel on the Prometheus data source, as the schema validation checks it.
//
// DataQuery (refId, hide, key, queryType, datasource) is Grafana's own, from @grafana/schema. The
// Prometheus fields are those of the `Prometheus` interface in @grafana/prometheus 13.2.3
// (dist/types/dataquery.d.ts, generated from the data source's CUE schema), copied here because
// that file also imports @grafana/data, which brings React and the whole front end along.
import type { DataQuery } from './node_modules/@grafana/schema/dist/types/common/common.gen.js';

export interface PrometheusQuery extends DataQuery {
  /** Which editor prepared the query. */
  editorMode?: 'builder' | 'code';
  /** Also query exemplars. */
  exemplar?: boolean;
  /** The PromQL expression. */
  expr: string;
  /** How to display the data points. */
  format?: 'time_series' | 'table' | 'heatmap';
  /** Only the latest value. */
  instant?: boolean;
  /** Deprecated; use the panel's max data points. */
  intervalFactor?: number;
  /** Series name template, e.g. {{provider}}. */
  legendFormat?: string;
  /** A range query. */
  range?: boolean;
}
