//! herald-analyze on real outputs: a k6 summary and the metrics of the project's own smoke run
//! (`make load-test SCENARIO=smoke`), a `make bench` ingest result, a Locust stats CSV, and inputs
//! that are empty or malformed; the comparison's exit code; and the HTML report as Chromium renders
//! it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use herald_analyze::compare::NoiseBand;
use herald_analyze::findings::{FindingKind, Percentile, Severity};
use herald_analyze::{analyze, Request};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn request(inputs: &[&str]) -> Request {
    Request {
        inputs: inputs.iter().map(|name| fixture(name)).collect(),
        baseline: Vec::new(),
        targets: None,
        metrics: Vec::new(),
        band: NoiseBand::default(),
        cache_ttl_seconds: 300,
    }
}

fn run_binary(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald-analyze"))
        .args(arguments)
        .output()
        .expect("running herald-analyze")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_smoke_runs_k6_summary_gives_each_endpoint_and_its_metrics_the_cache_advice() {
    let mut request = request(&["k6_smoke.json"]);
    request.metrics = vec![fixture("smoke_api.prom"), fixture("smoke_worker.prom")];
    let analysis = analyze(&request).unwrap();
    assert_eq!(
        endpoint_names(&analysis),
        vec!["batch", "get", "list", "single"]
    );
    let single = analysis.run.endpoint("single").unwrap();
    assert_eq!(single.requests, Some(301));
    assert_eq!(single.error_rate, Some(0.0));
    assert!((single.throughput_rps.unwrap() - 10.0).abs() < 0.2);
    assert!(single.latency.p95.unwrap() > 0.0 && single.latency.p99 >= single.latency.p95);
    assert!(analysis.findings.is_empty(), "{:?}", analysis.findings);
    assert_eq!(analysis.run.duration_seconds.map(f64::round), Some(30.0));
    // The recipients' tag cache missed 11% in 30 s: first reads, which no TTL avoids.
    let recipient = analysis
        .cache
        .iter()
        .find(|advice| advice.kind == "recipient")
        .unwrap();
    assert_eq!(recipient.lookups.total(), 897.0);
    assert_eq!(recipient.recommended, None, "{}", recipient.reason);
    assert!(recipient.reason.contains("shorter than cache.ttl_seconds"));
    assert_eq!(analysis.recommended_ttl_seconds, None);
}

#[test]
fn a_bench_result_is_judged_against_the_sla_beside_its_same_run_reference() {
    let analysis = analyze(&request(&["bench-results/ingest.json"])).unwrap();
    let reference = analysis.run.reference().unwrap();
    assert_eq!(reference.name, "ingest.bare_handler");
    assert!(
        analysis
            .findings
            .iter()
            .all(|finding| finding.endpoint != "ingest.bare_handler"),
        "the reference is never judged"
    );
    let single_p99 = analysis
        .findings
        .iter()
        .find(|finding| {
            finding.endpoint == "ingest.single"
                && finding.kind == FindingKind::Latency(Percentile::P99)
        })
        .unwrap();
    assert_eq!(single_p99.severity, Severity::Critical);
    assert_eq!(single_p99.figure, 1409.08);
    assert_eq!(
        single_p99.to_string(),
        "CRITICAL: ingest.single P99 latency 1409.1 ms exceeds its 500 ms target"
    );
    assert!(analysis
        .plan
        .iter()
        .any(|action| action.settings.contains(&"ingest.linger_ms")));
}

/// A real Locust run (`locust --headless -u 20 --csv`, 30 s against a debug stack): its reads hit the
/// tenant's read permits, and the plan names them.
#[test]
fn a_locust_csv_is_read_without_its_aggregated_row_and_its_refused_reads_are_found() {
    let analysis = analyze(&request(&["locust_stats.csv"])).unwrap();
    assert_eq!(
        endpoint_names(&analysis),
        vec![
            "GET /v1/notifications",
            "POST /v1/notifications",
            "GET /v1/notifications/[id]",
            "POST /v1/notifications/batch",
        ]
    );
    let posts = analysis.run.endpoint("POST /v1/notifications").unwrap();
    assert_eq!(posts.requests, Some(3359));
    assert_eq!(posts.latency.p99, Some(130.0));
    let shown: Vec<String> = analysis.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "CRITICAL: GET /v1/notifications error rate 32.26% exceeds its 1% target",
            "CRITICAL: GET /v1/notifications/[id] error rate 34.64% exceeds its 1% target",
            "WARNING: GET /v1/notifications P95 latency 140.0 ms exceeds its 100 ms target",
        ]
    );
    let read_settings: Vec<&str> = analysis
        .plan
        .iter()
        .filter(|action| {
            action
                .endpoints
                .iter()
                .any(|name| name == "GET /v1/notifications/[id]")
        })
        .flat_map(|action| action.settings.iter().copied())
        .collect();
    assert!(
        read_settings.contains(&"server.max_concurrent_reads_per_tenant"),
        "{read_settings:?}"
    );
    assert!(
        !read_settings.contains(&"outbox.max_unpublished"),
        "{read_settings:?}"
    );
}

/// Every rule at once, on a hand-made file in Locust's older header style (`# requests`).
#[test]
fn a_locust_csv_of_the_older_header_style_fires_each_rule() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("old_stats.csv");
    std::fs::write(
        &path,
        "Name,Type,# requests,# failures,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Length,Requests/s,Failure Rate,95%,99%\n\
         webhooks_list,GET,1500,0,50,55,20,300,245,50.0,0.0%,150,300\n\
         alerts_list,GET,1200,30,75,85,25,5000,512,40.0,2.5%,200,800\n",
    )
    .unwrap();
    let mut request = request(&[]);
    request.inputs = vec![path];
    let analysis = analyze(&request).unwrap();
    let shown: Vec<String> = analysis.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "CRITICAL: GET alerts_list P95 latency 200.0 ms exceeds its 100 ms target",
            "CRITICAL: GET alerts_list P99 latency 800.0 ms exceeds its 500 ms target",
            "CRITICAL: GET alerts_list error rate 2.50% exceeds its 1% target",
            "WARNING: GET alerts_list has high variance (max 5000 ms vs P99 800 ms)",
            // 1.5 × its target exactly: still a WARNING.
            "WARNING: GET webhooks_list P95 latency 150.0 ms exceeds its 100 ms target",
        ]
    );
}

#[test]
fn empty_and_malformed_inputs_are_refused_with_the_file_and_the_reason() {
    for (file, expected) in [
        ("empty.json", "the file is empty"),
        ("truncated.json", "not JSON"),
        ("no_p95_k6.json", "has no p(95)"),
        (
            "wrong_columns.csv",
            "missing the column(s) Name, Request Count (or # requests)",
        ),
        ("bad_bench.json", "its latency is not an object"),
    ] {
        let output = run_binary(&[fixture(file).to_str().unwrap(), "--html", "/dev/null"]);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{file}: {stdout}{stderr}");
        assert!(
            stderr.contains(file) && stderr.contains(expected),
            "{file}: {stderr}"
        );
        assert!(
            stdout.is_empty(),
            "{file}: nothing is printed as if analysed: {stdout}"
        );
    }
    let missing = run_binary(&["/nonexistent/results.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).1.contains("cannot be read"));
}

#[test]
fn a_regression_beyond_the_noise_band_fails_only_when_asked_to() {
    let directory = tempfile::tempdir().unwrap();
    let mut slower: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("bench-results/ingest.json")).unwrap(),
    )
    .unwrap();
    slower["single"]["latency_ms"]["p99"] = serde_json::json!(2000.0);
    let after = directory.path().join("ingest.json");
    std::fs::write(&after, slower.to_string()).unwrap();
    let html = directory.path().join("report.html");
    let arguments = |fail: bool| {
        let mut arguments = vec![
            after.to_str().unwrap().to_owned(),
            "--baseline".to_owned(),
            fixture("bench-results/ingest.json")
                .to_str()
                .unwrap()
                .to_owned(),
            "--html".to_owned(),
            html.to_str().unwrap().to_owned(),
        ];
        if fail {
            arguments.push("--fail-on-regression".to_owned());
        }
        arguments
    };
    let lenient = run_binary(&strings(&arguments(false)));
    let (stdout, _) = text(&lenient);
    assert_eq!(lenient.status.code(), Some(0));
    assert!(
        stdout.contains("p99 1409.1→2000.0 (+41.9%) REGRESSION"),
        "{stdout}"
    );
    assert!(stdout.contains("1 endpoint(s) regressed"), "{stdout}");
    let strict = run_binary(&strings(&arguments(true)));
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict).1);
    // The same run against itself: nothing beyond the band.
    let same = run_binary(&[
        fixture("bench-results/ingest.json").to_str().unwrap(),
        "--baseline",
        fixture("bench-results/ingest.json").to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--fail-on-regression",
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same).0);
}

/// The report as a browser shows it: Chromium (headless, from `scripts/tools.sh install`) takes
/// a screenshot, and the bars of each latency percentile and of the comparison are on it in
/// their colours. A report whose SVG did not render (or was not written) has none of them.
#[test]
fn the_reports_charts_render_in_chromium() {
    let directory = tempfile::tempdir().unwrap();
    let html = directory.path().join("report.html");
    let output = run_binary(&[
        fixture("bench-results/ingest.json").to_str().unwrap(),
        "--baseline",
        fixture("bench-results/ingest.json").to_str().unwrap(),
        "--metrics",
        fixture("smoke_api.prom").to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let document = std::fs::read_to_string(&html).unwrap();
    assert!(
        !document.contains("<script") && !document.contains("<link"),
        "self-contained: nothing fetched"
    );
    assert_eq!(
        document.matches("<svg").count(),
        4,
        "latency, throughput, errors, comparison"
    );

    let screenshot = directory.path().join("report.png");
    let chromium = std::env::var("HERALD_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let shot = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,4000",
        ])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap_or_else(|error| {
            panic!("running {chromium} ({error}): scripts/tools.sh install puts Debian's chromium on the machine")
        });
    assert!(screenshot.exists(), "no screenshot: {}", text(&shot).1);
    let pixels = rgb_pixels(&screenshot);
    let count = |color: (u8, u8, u8)| pixels.iter().filter(|pixel| **pixel == color).count();
    let (p50, p95, p99) = (
        herald_analyze::report::P50_COLOR,
        herald_analyze::report::P95_COLOR,
        herald_analyze::report::P99_COLOR,
    );
    for (name, color) in [("P50", p50), ("P95", p95), ("P99", p99)] {
        let seen = count((color.0, color.1, color.2));
        assert!(
            seen > 2_000,
            "{name} bars: {seen} pixels of their colour in the screenshot"
        );
    }
}

fn endpoint_names(analysis: &herald_analyze::analysis::Analysis) -> Vec<&str> {
    analysis
        .run
        .endpoints
        .iter()
        .map(|endpoint| endpoint.name.as_str())
        .collect()
}

fn strings(arguments: &[String]) -> Vec<&str> {
    arguments.iter().map(String::as_str).collect()
}

fn rgb_pixels(path: &Path) -> Vec<(u8, u8, u8)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = match frame.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("a screenshot in {other:?}"),
    };
    buffer[..frame.buffer_size()]
        .chunks(channels)
        .map(|pixel| (pixel[0], pixel[1], pixel[2]))
        .collect()
}
