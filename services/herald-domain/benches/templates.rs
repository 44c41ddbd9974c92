//! Template rendering: what a worker does per delivery of a notification rendered from a template
//! (a compiled version is cached; rendering is per recipient). Beside it, in the same run, the
//! inline `{{placeholder}}` render every other notification pays, as the reference. `cargo bench
//! -p herald-domain --bench templates`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald_domain::placeholders;
use herald_domain::templates::{
    NotificationContext, RecipientContext, RenderContext, TemplateDefinition,
};
use herald_domain::Channel;
use serde_json::json;

/// A typical transactional email: a subject, a text and an HTML body of about 1.5 KB with a
/// loop over the order's lines and a condition.
fn order_confirmation() -> TemplateDefinition {
    let html = format!(
        "<html><body><h1>Thanks, {{{{ data.name }}}}!</h1>{}<table>{{% for line in data.lines %}}\
         <tr><td>{{{{ line.item }}}}</td><td>{{{{ line.quantity }}}}</td><td>{{{{ line.price }}}}</td></tr>\
         {{% endfor %}}</table>{{% if data.coupon is defined %}}<p>Coupon {{{{ data.coupon | upper }}}}</p>\
         {{% endif %}}<p>Order {{{{ data.order_id }}}}</p></body></html>",
        "<p>Your order is confirmed and on its way.</p>".repeat(20)
    );
    serde_json::from_value(json!({
        "channels": {
            "email": {
                "subject": "Order {{ data.order_id }} confirmed",
                "text": "Thanks, {{ data.name }}! Order {{ data.order_id }}: {{ data.lines | length }} items.",
                "html": html,
            },
            "sms": {"text": "Order {{ data.order_id }} confirmed, {{ data.name }}."}
        },
        "locales": {"pt": {"sms": {"text": "Pedido {{ data.order_id }} confirmado, {{ data.name }}."}}}
    }))
    .unwrap()
}

fn order_data() -> serde_json::Map<String, serde_json::Value> {
    json!({
        "name": "Ana Souza",
        "order_id": "A-10293",
        "coupon": "spring",
        "lines": [
            {"item": "Pressure sensor", "quantity": 2, "price": "19.90"},
            {"item": "Valve", "quantity": 1, "price": "7.50"},
            {"item": "Cable 2 m", "quantity": 4, "price": "3.20"},
        ],
    })
    .as_object()
    .unwrap()
    .clone()
}

fn render(criterion: &mut Criterion) {
    let compiled = order_confirmation().validate().unwrap();
    let data = order_data();
    let context = RenderContext {
        data: &data,
        recipient: RecipientContext {
            id: "customer-42817",
            locale: Some("pt-BR"),
        },
        notification: NotificationContext {
            id: uuid::Uuid::now_v7(),
        },
        unsubscribe_url: None,
    };
    let mut group = criterion.benchmark_group("template_render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("email_subject_text_html", |bencher| {
        bencher.iter(|| {
            compiled
                .render(
                    Channel::Email,
                    black_box(Some("pt-BR")),
                    black_box(&context),
                )
                .unwrap()
        })
    });
    group.bench_function("sms_locale_fallback", |bencher| {
        bencher.iter(|| {
            compiled
                .render(Channel::Sms, black_box(Some("pt-BR")), black_box(&context))
                .unwrap()
        })
    });
    // The worst a tenant can write: a loop in a loop that runs until its fuel is out, over the
    // largest data (64 KiB of items), each render refused at its bound.
    let hostile: TemplateDefinition = serde_json::from_value(json!({"channels": {"sms": {
        "text": "{% for a in data.items %}{% for b in data.items %}{{ b }}{% endfor %}{% endfor %}"
    }}}))
    .unwrap();
    let hostile = hostile.validate().unwrap();
    let items = json!({"items": vec![0; 30_000]})
        .as_object()
        .unwrap()
        .clone();
    let hostile_context = RenderContext {
        data: &items,
        recipient: RecipientContext {
            id: "customer-42817",
            locale: None,
        },
        notification: NotificationContext {
            id: uuid::Uuid::now_v7(),
        },
        unsubscribe_url: None,
    };
    group.bench_function("hostile_out_of_fuel", |bencher| {
        bencher.iter(|| {
            compiled_error(hostile.render(Channel::Sms, None, black_box(&hostile_context)))
        })
    });
    // The reference: the inline content of a notification without a template.
    let inline_body = "Thanks, {{name}}! Order {{order_id}} is confirmed and on its way.";
    group.bench_function("inline_placeholders_reference", |bencher| {
        bencher.iter(|| {
            placeholders::render(black_box(inline_body), black_box(&data), 128 * 1024).unwrap()
        })
    });
    group.finish();

    let mut group = criterion.benchmark_group("template_compile");
    group.throughput(Throughput::Elements(1));
    let definition = order_confirmation();
    group.bench_function("order_confirmation", |bencher| {
        bencher.iter(|| black_box(&definition).validate().unwrap())
    });
    group.finish();
}

/// The render's error, which the hostile template always ends in.
fn compiled_error<T: std::fmt::Debug>(
    result: Result<T, herald_domain::templates::RenderError>,
) -> herald_domain::templates::RenderError {
    result.expect_err("the hostile template never renders")
}

criterion_group!(benches, render);
criterion_main!(benches);
