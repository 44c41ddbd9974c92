//! What every input is read into: a run's endpoints, each with its request count, errors,
//! throughput and latency percentiles, whatever tool measured them.

/// Latency figures of one endpoint, in milliseconds. A tool that does not measure one leaves it out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

/// What an endpoint's latency spans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stage {
    /// A request, from sending it to its answer.
    #[default]
    Request,
    /// A notification from its acceptance to the provider's receipt (the bench's delivery runs).
    Delivery,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointResult {
    /// As the tool named it: k6's `endpoint` tag, the bench's scenario path (`ingest.single`), or
    /// Locust's method and name.
    pub name: String,
    pub requests: Option<u64>,
    /// The share of requests that failed, 0 to 1.
    pub error_rate: Option<f64>,
    pub throughput_rps: Option<f64>,
    pub latency: Latency,
    pub stage: Stage,
    /// A reference measured in the same run (the bench's bare handler): not judged against the
    /// targets; the others' latency is shown beside it.
    pub is_reference: bool,
}

impl EndpointResult {
    pub fn new(name: impl Into<String>) -> EndpointResult {
        EndpointResult {
            name: name.into(),
            requests: None,
            error_rate: None,
            throughput_rps: None,
            latency: Latency::default(),
            stage: Stage::Request,
            is_reference: false,
        }
    }
}

/// One run: what one or more input files of the same run held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunResults {
    /// The input files, for the report.
    pub sources: Vec<String>,
    /// How long the run offered load, when the input says.
    pub duration_seconds: Option<f64>,
    pub endpoints: Vec<EndpointResult>,
}

impl RunResults {
    pub fn endpoint(&self, name: &str) -> Option<&EndpointResult> {
        self.endpoints.iter().find(|endpoint| endpoint.name == name)
    }

    /// The same-run reference (the bench's bare handler), if the run has one.
    pub fn reference(&self) -> Option<&EndpointResult> {
        self.endpoints.iter().find(|endpoint| endpoint.is_reference)
    }
}
