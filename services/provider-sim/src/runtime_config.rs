//! Changing a provider's behaviour while the simulator runs:
//! `GET /_sim/config` shows every behaviour, `PUT /_sim/config/{provider}` replaces one.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::behaviour::ProviderBehaviour;
use crate::json_error::json_error;
use crate::provider::{PerProvider, Provider};
use crate::state::SimulatorState;

/// `GET /_sim/config`: `{"sendgrid": {…}, "twilio": {…}, …}`, every provider's behaviour.
pub type BehaviourSnapshot = PerProvider<ProviderBehaviour>;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/_sim/config", web::get().to(show_behaviours))
        .route("/_sim/config/{provider}", web::put().to(replace_behaviour));
}

async fn show_behaviours(state: web::Data<SimulatorState>) -> HttpResponse {
    let behaviours: BehaviourSnapshot =
        PerProvider::from_fn(|provider| state.simulation(provider).behaviour());
    HttpResponse::Ok().json(behaviours)
}

/// Replaces the whole behaviour: fields missing from the body take their defaults, so
/// `PUT {}` restores a fast, reliable provider. Answers the behaviour now in force.
async fn replace_behaviour(
    state: web::Data<SimulatorState>,
    provider: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(provider) = Provider::from_name(&provider) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &format!(
                "unknown provider `{provider}`; expected one of {}",
                Provider::all_names()
            ),
        );
    };
    let behaviour = if body.iter().all(u8::is_ascii_whitespace) {
        ProviderBehaviour::default()
    } else {
        match serde_json::from_slice::<ProviderBehaviour>(&body) {
            Ok(behaviour) => behaviour,
            Err(error) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid behaviour: {error}"),
                )
            }
        }
    };
    if let Err(error) = state
        .simulation(provider)
        .replace_behaviour(behaviour.clone())
    {
        return json_error(StatusCode::BAD_REQUEST, &error.to_string());
    }
    tracing::info!(
        provider = provider.name(),
        ?behaviour,
        "provider behaviour replaced"
    );
    HttpResponse::Ok().json(behaviour)
}
