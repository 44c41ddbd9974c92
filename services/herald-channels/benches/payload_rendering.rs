//! Each provider's request from an `OutgoingMessage`: exactly what its `send` does before the
//! network (`request_body`; for webhooks the rendering and the Standard Webhooks signature, for
//! SMTP the email built and formatted as the transport writes it). One delivery is one call.
//! `cargo bench -p herald-worker --bench payload_rendering`.
//!
//! The providers are built from the default settings (`config/herald.toml`, as a worker loads
//! them), so the `from` addresses and URLs are the ones a local worker uses.

mod common;

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use common::BodySize;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use herald_channels::discord::Discord;
use herald_channels::sendgrid::SendGrid;
use herald_channels::slack::Slack;
use herald_channels::smtp::Smtp;
use herald_channels::telegram::Telegram;
use herald_channels::twilio::Twilio;
use herald_channels::webhook::{sign, Webhook};
use herald_channels::{Contact, OutgoingMessage, SendOutcome};
use herald_config::Settings;

/// Runs `render` once to prove it succeeds (a bench of an error path would mislead), then
/// measures it for `message`.
fn bench_rendering<Rendered>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: String,
    message: &OutgoingMessage,
    render: impl Fn(&OutgoingMessage) -> Result<Rendered, SendOutcome>,
) {
    if let Err(outcome) = render(message) {
        panic!("{name} does not render: {outcome:?}");
    }
    group.bench_function(name, |bencher| bencher.iter(|| render(black_box(message))));
}

fn rendering(criterion: &mut Criterion) {
    let settings = Settings::load(None).expect("the default settings load");
    let providers = &settings.providers;
    let client = reqwest::Client::new();
    let sendgrid = SendGrid::new(&providers.sendgrid, client.clone());
    let twilio = Twilio::new(&providers.twilio, client.clone());
    let slack = Slack::new(client.clone(), false);
    let discord = Discord::new(client.clone(), false);
    let telegram = Telegram::new(&providers.telegram, client.clone());
    let webhook = Webhook::new(client, false);
    // lettre's connection pool spawns a reaper task when built and a shutdown task when dropped,
    // so the transport lives inside a runtime's context; nothing connects until a send.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _inside_runtime = runtime.enter();
    let smtp = Smtp::new(&providers.smtp)
        .expect("the default SMTP settings are valid")
        .expect("the default settings configure SMTP");

    let mut group = criterion.benchmark_group("request_body");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for size in BodySize::ALL {
        let size_name = size.name();
        let email = common::message(common::email_contact(), size);
        bench_rendering(
            &mut group,
            format!("sendgrid/{size_name}"),
            &email,
            |message| sendgrid.request_body(message),
        );
        bench_rendering(&mut group, format!("smtp/{size_name}"), &email, |message| {
            smtp.request_body(message).map(|email| email.formatted())
        });
        let sms = common::message(common::phone_contact(), size);
        bench_rendering(&mut group, format!("twilio/{size_name}"), &sms, |message| {
            twilio.request_body(message)
        });
        let slack_message = common::message(common::slack_contact(), size);
        bench_rendering(
            &mut group,
            format!("slack/{size_name}"),
            &slack_message,
            |message| slack.request_body(message),
        );
        let discord_message = common::message(common::discord_contact(), size);
        bench_rendering(
            &mut group,
            format!("discord/{size_name}"),
            &discord_message,
            |message| discord.request_body(message),
        );
        let telegram_message = common::message(common::telegram_contact(), size);
        bench_rendering(
            &mut group,
            format!("telegram/{size_name}"),
            &telegram_message,
            |message| telegram.request_body(message),
        );
        let webhook_message = common::message(common::webhook_contact(), size);
        bench_rendering(
            &mut group,
            format!("webhook/{size_name}"),
            &webhook_message,
            |message| {
                // As `send`: the event stamped now, then signed with the recipient's secret.
                let Contact::Webhook(contact) = &message.contact else {
                    unreachable!("a webhook message");
                };
                let now = Utc::now();
                let body = webhook.request_body(message, now)?;
                let signed = sign(
                    &contact.secret,
                    &message.delivery_id.to_string(),
                    now.timestamp(),
                    &body,
                )
                .map_err(|error| SendOutcome::Permanent {
                    error,
                    http_status: None,
                })?;
                Ok((body, signed.signature))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, rendering);
criterion_main!(benches);
