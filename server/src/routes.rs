//! The route table: every route, registered in one function that the binary,
//! the embedded server and the tests share.

use actix_web::web;

use crate::{admin, chat, echo, introspect, sse, web as assets, ws};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sse", web::get().to(sse::handler))
        .route("/ws", web::get().to(ws::handler))
        .route("/stats", web::get().to(introspect::stats))
        .route("/metrics", web::get().to(introspect::metrics))
        .route("/info", web::get().to(introspect::info))
        .route("/admin/drop", web::post().to(admin::drop))
        .route("/admin/restart", web::post().to(admin::restart))
        .route("/chat", web::post().to(chat::sse_handler))
        .route("/ws/chat", web::get().to(chat::ws_handler))
        .route("/ws/echo", web::get().to(echo::ws_handler))
        .route("/sse/echo", web::get().to(echo::sse_handler))
        .route("/echo", web::post().to(echo::post_handler))
        .route("/", web::get().to(assets::index))
        .route("/{path:.*}", web::get().to(assets::file));
}
