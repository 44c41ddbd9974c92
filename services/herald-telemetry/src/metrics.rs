//! The one Prometheus registry of a process. Every crate registers its metrics here, as statics
//! forced at start-up, so `/metrics` lists each of them before its first use.

use once_cell::sync::Lazy;
use prometheus::{
    register_int_counter_vec_with_registry, register_int_gauge_vec_with_registry, Encoder,
    IntCounterVec, IntGaugeVec, Registry, TextEncoder,
};

pub static REGISTRY: Lazy<Registry> = Lazy::new(|| {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let process = prometheus::process_collector::ProcessCollector::for_self();
        let _ = registry.register(Box::new(process));
    }
    registry
});

pub static TASK_RESTARTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_task_restarts_total",
        "Long-running tasks restarted after a panic, by task.",
        &["task"],
        REGISTRY
    )
    .expect("registering herald_task_restarts_total")
});

pub static PANICS_CAUGHT: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "herald_panics_caught_total",
        "Panics caught around one unit of work (a record, a send, a flush), by where.",
        &["site"],
        REGISTRY
    )
    .expect("registering herald_panics_caught_total")
});

pub static BUILD_INFO: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec_with_registry!(
        "herald_build_info",
        "1 for the running component and its version: how dashboards tell replicas and releases apart.",
        &["component", "version"],
        REGISTRY
    )
    .expect("registering herald_build_info")
});

pub fn register_all() {
    Lazy::force(&TASK_RESTARTS);
    Lazy::force(&PANICS_CAUGHT);
    Lazy::force(&BUILD_INFO);
}

/// Marks this process as `component` (api, worker) of this release in `herald_build_info`.
pub fn set_build_info(component: &str) {
    BUILD_INFO
        .with_label_values(&[component, env!("CARGO_PKG_VERSION")])
        .set(1);
}

/// Shows a labelled counter's series from the start (at zero), so that `/metrics` lists it before
/// its first increment and an alert on it can be evaluated.
pub fn declare(counter: &IntCounterVec, label_values: &[&[&str]]) {
    for values in label_values {
        let _ = counter.with_label_values(values);
    }
}

/// The registry in the text exposition format.
pub fn encode_text() -> Result<Vec<u8>, prometheus::Error> {
    let mut buffer = Vec::new();
    TextEncoder::new().encode(&REGISTRY.gather(), &mut buffer)?;
    Ok(buffer)
}

/// `GET /metrics` of every Herald process: the registry in the text exposition format.
pub async fn endpoint() -> actix_web::HttpResponse {
    match encode_text() {
        Ok(text) => actix_web::HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(error) => {
            tracing::error!(%error, "encoding metrics failed");
            actix_web::HttpResponse::InternalServerError().finish()
        }
    }
}
