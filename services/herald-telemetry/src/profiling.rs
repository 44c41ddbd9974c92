//! On-demand CPU profiles, for builds with the `profiling` feature (`cargo build --release
//! --features profiling`): `GET /debug/pprof/profile?seconds=N` answers a pprof protobuf profile
//! (`go tool pprof`, `pprof -http`, Grafana Pyroscope, speedscope read it) and
//! `GET /debug/pprof/flamegraph?seconds=N` an SVG flame graph. Sampling at 99 Hz with pprof-rs
//! (signal-based, in-process: no perf, no privileges), one profile at a time, at most 60 s.
//! Without the feature `configure` adds no route: a production build has no profiling surface.

use actix_web::web;

/// Whether this build serves profiles (the `profiling` feature).
pub const ENABLED: bool = cfg!(feature = "profiling");

/// Adds the profiling routes when the feature is on; nothing otherwise.
pub fn configure(config: &mut web::ServiceConfig) {
    #[cfg(feature = "profiling")]
    enabled::configure(config);
    #[cfg(not(feature = "profiling"))]
    let _ = config;
}

#[cfg(feature = "profiling")]
mod enabled {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use actix_web::{web, HttpResponse};
    use pprof::protos::Message;
    use serde::Deserialize;

    const SAMPLING_HZ: i32 = 99;
    const DEFAULT_SECONDS: u64 = 10;
    const MAX_SECONDS: u64 = 60;

    /// The profiler is process-wide (one SIGPROF timer): a second request waits for nobody.
    static PROFILING: AtomicBool = AtomicBool::new(false);

    /// The right to profile, given back when the profile is over, however it ends: the sampling
    /// thread holds it, so a client that hangs up early cannot leave the flag set for good.
    struct ProfilingTurn;

    impl ProfilingTurn {
        fn take() -> Option<ProfilingTurn> {
            (!PROFILING.swap(true, Ordering::AcqRel)).then_some(ProfilingTurn)
        }
    }

    impl Drop for ProfilingTurn {
        fn drop(&mut self) {
            PROFILING.store(false, Ordering::Release);
        }
    }

    #[derive(Deserialize)]
    struct ProfileQuery {
        seconds: Option<u64>,
    }

    #[derive(Clone, Copy)]
    enum Output {
        Pprof,
        FlameGraph,
    }

    pub fn configure(config: &mut web::ServiceConfig) {
        config
            .route(
                "/debug/pprof/profile",
                web::get().to(|query| profile(query, Output::Pprof)),
            )
            .route(
                "/debug/pprof/flamegraph",
                web::get().to(|query| profile(query, Output::FlameGraph)),
            );
    }

    async fn profile(query: web::Query<ProfileQuery>, output: Output) -> HttpResponse {
        let seconds = query.seconds.unwrap_or(DEFAULT_SECONDS);
        if seconds == 0 || seconds > MAX_SECONDS {
            return HttpResponse::BadRequest().json(serde_json::json!({
                "error": {"code": "invalid_seconds", "message": format!("seconds must be 1 to {MAX_SECONDS}")}
            }));
        }
        let Some(turn) = ProfilingTurn::take() else {
            return HttpResponse::Conflict().json(serde_json::json!({
                "error": {"code": "profile_in_progress", "message": "another profile is being taken"}
            }));
        };
        // Sampling sleeps and symbolising is CPU work: neither belongs on an async thread.
        let taken = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            take(Duration::from_secs(seconds), output)
        })
        .await;
        match taken {
            Ok(Ok((content_type, body))) => {
                HttpResponse::Ok().content_type(content_type).body(body)
            }
            Ok(Err(error)) => HttpResponse::InternalServerError().json(serde_json::json!({
                "error": {"code": "profile_failed", "message": error}
            })),
            Err(_panicked) => HttpResponse::InternalServerError().finish(),
        }
    }

    fn take(duration: Duration, output: Output) -> Result<(&'static str, Vec<u8>), String> {
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(SAMPLING_HZ)
            // Unwinding through these from a signal handler can deadlock (pprof-rs README).
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .map_err(|error| error.to_string())?;
        std::thread::sleep(duration);
        let report = guard.report().build().map_err(|error| error.to_string())?;
        match output {
            Output::Pprof => {
                let profile = report.pprof().map_err(|error| error.to_string())?;
                Ok(("application/octet-stream", profile.encode_to_vec()))
            }
            Output::FlameGraph => {
                let mut svg = Vec::new();
                report
                    .flamegraph(&mut svg)
                    .map_err(|error| error.to_string())?;
                Ok(("image/svg+xml", svg))
            }
        }
    }
}

#[cfg(all(test, feature = "profiling"))]
mod tests {
    use actix_web::{test, App};
    use pprof::protos::Message;

    fn burn_cpu_for(duration: std::time::Duration) {
        let until = std::time::Instant::now() + duration;
        let mut value = 0u64;
        while std::time::Instant::now() < until {
            value = std::hint::black_box(value.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    #[actix_web::test]
    async fn a_profile_is_a_pprof_protobuf_with_samples_and_only_one_runs_at_a_time() {
        let app = test::init_service(App::new().configure(super::configure)).await;
        let burner = std::thread::spawn(|| burn_cpu_for(std::time::Duration::from_secs(3)));

        let first = test::TestRequest::get()
            .uri("/debug/pprof/profile?seconds=2")
            .to_request();
        let second = test::TestRequest::get()
            .uri("/debug/pprof/flamegraph?seconds=1")
            .to_request();
        let (first, second) = futures::join!(test::call_service(&app, first), async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            test::call_service(&app, second).await
        });
        assert_eq!(second.status(), 409, "one profile at a time");
        assert_eq!(first.status(), 200);
        let body = test::read_body(first).await;
        let profile = pprof::protos::Profile::decode(body.as_ref()).expect("a pprof protobuf");
        assert!(!profile.sample.is_empty(), "no samples of a busy process");
        burner.join().unwrap();

        let burner = std::thread::spawn(|| burn_cpu_for(std::time::Duration::from_secs(2)));
        let flame = test::TestRequest::get()
            .uri("/debug/pprof/flamegraph?seconds=1")
            .to_request();
        let flame = test::call_service(&app, flame).await;
        let status = flame.status();
        let svg = String::from_utf8_lossy(&test::read_body(flame).await).into_owned();
        assert_eq!(status, 200, "{svg}");
        assert!(
            svg.contains("<svg") && svg.contains("burn_cpu_for"),
            "{svg}"
        );
        burner.join().unwrap();

        // A client that hangs up mid-profile does not keep the next one out.
        let abandoned = test::TestRequest::get()
            .uri("/debug/pprof/profile?seconds=1")
            .to_request();
        let hung_up = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            test::call_service(&app, abandoned),
        )
        .await;
        assert!(
            hung_up.is_err(),
            "the request was abandoned before its profile was over"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let next = test::TestRequest::get()
            .uri("/debug/pprof/profile?seconds=1")
            .to_request();
        assert_eq!(test::call_service(&app, next).await.status(), 200);

        for bad in ["0", "61", "x"] {
            let request = test::TestRequest::get()
                .uri(&format!("/debug/pprof/profile?seconds={bad}"))
                .to_request();
            assert_eq!(
                test::call_service(&app, request).await.status(),
                400,
                "{bad}"
            );
        }
    }
}
