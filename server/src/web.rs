//! The browser page, embedded in the binary at build time.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../web/"]
struct Assets;

fn serve(path: &str) -> HttpResponse {
    match Assets::get(path) {
        Some(file) => HttpResponse::Ok()
            .content_type(file.metadata.mimetype())
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(file.data.into_owned()),
        None => HttpResponse::NotFound().body(format!("no such page: /{path}\n")),
    }
}

pub async fn index() -> HttpResponse {
    serve("index.html")
}

pub async fn file(path: web::Path<String>) -> HttpResponse {
    serve(&path)
}
