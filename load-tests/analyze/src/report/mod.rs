//! The HTML report: one self-contained file (inline CSS and SVG, nothing fetched) with the tables
//! of the summary and charts of latency against targets, throughput, error rate and, for two runs,
//! the change per endpoint.

mod charts;

use std::fmt::Write;

use charts::{BarChart, Mark, Series};

use crate::analysis::Analysis;
use crate::compare::Verdict;
use crate::findings::Severity;

pub use charts::{P50_COLOR, P95_COLOR, P99_COLOR};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.decimals$}"))
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child,td.text{text-align:left}\
.CRITICAL{color:#b00;font-weight:bold}.WARNING{color:#a60;font-weight:bold}.regression{color:#b00}.better{color:#070}\
figure{margin:0 0 24px}code{background:#f4f4f4;padding:0 3px}";

pub fn render(analysis: &Analysis) -> Result<String, String> {
    let run = &analysis.run;
    let names: Vec<String> = run
        .endpoints
        .iter()
        .map(|endpoint| endpoint.name.clone())
        .collect();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Herald load analysis</title><style>{STYLE}</style></head><body>\
         <h1>Herald load analysis</h1><p>{} endpoint(s) from {}{}</p>",
        run.endpoints.len(),
        escape(&run.sources.join(", ")),
        run.duration_seconds.map_or(String::new(), |seconds| format!(", {seconds:.0} s of load"))
    );

    html.push_str("<h2>Endpoints</h2><table><tr><th>endpoint</th><th>requests</th><th>req/s</th><th>P50 ms</th><th>P95 ms</th><th>P99 ms</th><th>max ms</th><th>errors</th><th>target P95 / P99 ms</th></tr>");
    for endpoint in &run.endpoints {
        let target = analysis.targets.of(endpoint);
        let _ = write!(
            html,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&endpoint.name),
            if endpoint.is_reference { " (same-run reference)" } else { "" },
            endpoint.requests.map_or("–".to_owned(), |requests| requests.to_string()),
            cell(endpoint.throughput_rps, 1),
            cell(endpoint.latency.p50, 1),
            cell(endpoint.latency.p95, 1),
            cell(endpoint.latency.p99, 1),
            cell(endpoint.latency.max, 0),
            endpoint.error_rate.map_or("–".to_owned(), |rate| format!("{:.2}%", rate * 100.0)),
            if endpoint.is_reference {
                "–".to_owned()
            } else {
                format!("{} / {}", cell(target.p95_ms, 0), cell(target.p99_ms, 0))
            },
        );
    }
    html.push_str("</table>");

    let latency = BarChart {
        title: "Latency percentiles per endpoint against targets (ms, log scale)",
        y_description: "ms",
        endpoints: &names,
        series: vec![
            Series {
                label: "P50",
                color: P50_COLOR,
                values: run.endpoints.iter().map(|e| e.latency.p50).collect(),
            },
            Series {
                label: "P95",
                color: P95_COLOR,
                values: run.endpoints.iter().map(|e| e.latency.p95).collect(),
            },
            Series {
                label: "P99",
                color: P99_COLOR,
                values: run.endpoints.iter().map(|e| e.latency.p99).collect(),
            },
        ],
        marks: run
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, endpoint)| !endpoint.is_reference)
            .flat_map(|(index, endpoint)| {
                let target = analysis.targets.of(endpoint);
                [target.p95_ms, target.p99_ms]
                    .into_iter()
                    .flatten()
                    .map(move |value| Mark {
                        endpoint: index,
                        value,
                    })
            })
            .collect(),
        band: None,
    };
    figure(&mut html, "latency", latency.draw_log()?);
    let throughput = BarChart {
        title: "Throughput per endpoint (requests or deliveries per second)",
        y_description: "per second",
        endpoints: &names,
        series: vec![Series {
            label: "throughput",
            color: charts::THROUGHPUT_COLOR,
            values: run.endpoints.iter().map(|e| e.throughput_rps).collect(),
        }],
        marks: run
            .endpoints
            .iter()
            .enumerate()
            .filter_map(|(index, endpoint)| {
                Some(Mark {
                    endpoint: index,
                    value: analysis.targets.of(endpoint).min_throughput_rps?,
                })
            })
            .collect(),
        band: None,
    };
    figure(&mut html, "throughput", throughput.draw_linear()?);
    let errors = BarChart {
        title: "Error rate per endpoint (%)",
        y_description: "%",
        endpoints: &names,
        series: vec![Series {
            label: "errors",
            color: charts::ERRORS_COLOR,
            values: run
                .endpoints
                .iter()
                .map(|e| e.error_rate.map(|rate| rate * 100.0))
                .collect(),
        }],
        marks: run
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, endpoint)| !endpoint.is_reference && endpoint.error_rate.is_some())
            .filter_map(|(index, endpoint)| {
                Some(Mark {
                    endpoint: index,
                    value: analysis.targets.of(endpoint).error_rate_percent?,
                })
            })
            .collect(),
        band: None,
    };
    figure(&mut html, "errors", errors.draw_linear()?);

    let _ = write!(
        html,
        "<h2>Bottlenecks: {} CRITICAL, {} WARNING</h2><ul>",
        analysis.count(Severity::Critical),
        analysis.count(Severity::Warning)
    );
    for finding in &analysis.findings {
        let text = finding.to_string();
        let (severity, rest) = text.split_once(": ").unwrap_or(("", &text));
        let _ = write!(
            html,
            "<li><span class=\"{severity}\">{severity}</span> {}</li>",
            escape(rest)
        );
    }
    html.push_str("</ul>");
    if !analysis.plan.is_empty() {
        html.push_str("<h2>Plan</h2>");
        for (tier, actions) in analysis.plan_by_tier() {
            let _ = write!(html, "<h3>{}</h3><ul>", tier.title());
            for action in actions {
                let settings: Vec<String> = action
                    .settings
                    .iter()
                    .map(|setting| format!("<code>{}</code>", escape(setting)))
                    .collect();
                let _ = write!(
                    html,
                    "<li>{} {}<br>expect: {}; for {}</li>",
                    escape(action.action),
                    settings.join(" "),
                    escape(action.expected_effect),
                    escape(&action.endpoints.join(", "))
                );
            }
            html.push_str("</ul>");
        }
    }
    if !analysis.cache.is_empty() {
        html.push_str("<h2>Caches</h2><table><tr><th>kind</th><th>lookups</th><th>per second</th><th>hit rate</th><th>advice</th></tr>");
        for advice in &analysis.cache {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                escape(&advice.kind),
                advice.lookups.total() as u64,
                cell(advice.lookups_per_second, 1),
                advice
                    .lookups
                    .hit_rate()
                    .map_or("–".to_owned(), |rate| format!("{:.2}%", rate * 100.0)),
                escape(&advice.reason)
            );
        }
        let _ = write!(
            html,
            "</table><p>Recommended: {}</p>",
            analysis.recommended_ttl_seconds.map_or(
                "keep <code>cache.ttl_seconds</code>".to_owned(),
                |ttl| format!("<code>cache.ttl_seconds = {ttl}</code>")
            )
        );
    }
    if let Some(comparison) = &analysis.comparison {
        let compared: Vec<String> = comparison
            .endpoints
            .iter()
            .map(|endpoint| endpoint.endpoint.clone())
            .collect();
        let change_of = |figure: &str| -> Vec<Option<f64>> {
            comparison
                .endpoints
                .iter()
                .map(|endpoint| {
                    endpoint
                        .changes
                        .iter()
                        .find(|change| change.figure == figure)
                        .map(|change| change.delta_percent())
                })
                .collect()
        };
        let band = comparison.band.percent;
        let chart = BarChart {
            title: "Change per endpoint against the baseline (%; grey: the noise band)",
            y_description: "% change",
            endpoints: &compared,
            series: vec![
                Series {
                    label: "P95",
                    color: P95_COLOR,
                    values: change_of("p95"),
                },
                Series {
                    label: "P99",
                    color: P99_COLOR,
                    values: change_of("p99"),
                },
                Series {
                    label: "throughput",
                    color: charts::THROUGHPUT_COLOR,
                    values: change_of("throughput"),
                },
            ],
            marks: Vec::new(),
            band: Some((-band, band)),
        };
        let _ = write!(
            html,
            "<h2>Compared with {}</h2>",
            escape(
                &analysis
                    .baseline
                    .as_ref()
                    .map_or(String::new(), |baseline| baseline.sources.join(", "))
            )
        );
        figure(&mut html, "comparison", chart.draw_linear()?);
        html.push_str("<table><tr><th>endpoint</th><th>figure</th><th>before</th><th>after</th><th>change</th><th>verdict</th></tr>");
        for endpoint in &comparison.endpoints {
            for change in &endpoint.changes {
                let (class, verdict) = match change.verdict {
                    Verdict::Regression => ("regression", "regression"),
                    Verdict::Improvement => ("better", "better"),
                    Verdict::WithinNoise => ("", "within noise"),
                };
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:+.1}{}</td><td class=\"{class}\">{verdict}</td></tr>",
                    escape(&endpoint.endpoint),
                    change.figure,
                    change.before,
                    change.after,
                    change.delta_percent(),
                    if change.figure == "error rate" { " pt" } else { "%" },
                );
            }
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

fn figure(html: &mut String, id: &str, svg: String) {
    let _ = write!(html, "<figure id=\"{id}\">{svg}</figure>");
}
