//! The alert rules name only metrics that exist: a typo would make an alert that never fires.

#[test]
fn every_metric_an_alert_names_is_registered() {
    herald_api::metrics::register_all();
    herald_worker::metrics::register_all();
    let exposition = String::from_utf8(herald_telemetry::metrics::encode_text().unwrap()).unwrap();
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ops/prometheus/herald-alerts.yml"
    ))
    .unwrap();
    let mut checked = 0;
    for token in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !token.starts_with("herald_") {
            continue;
        }
        let declared = format!("# TYPE {token} ");
        assert!(
            exposition.contains(&declared),
            "the alert rules name `{token}`, which is not registered"
        );
        checked += 1;
    }
    assert!(checked >= 9, "{checked} metric names checked");
}
