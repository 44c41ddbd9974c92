use actix_web::{web, App, HttpResponse, HttpServer};

async fn accept(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Accepted()
        .content_type("application/json")
        .body(format!(
            r#"{{"id":"{}","status":"accepted"}}"#,
            uuid::Uuid::now_v7()
        ))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    HttpServer::new(|| App::new().default_service(web::to(accept)))
        .bind(address)?
        .run()
        .await
}
