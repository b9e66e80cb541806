//! The admin routes: `POST /admin/drop` (every stream, or a fraction) and
//! `POST /admin/restart` (close every stream and refuse or pause new ones
//! for a while), and who may call them.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::chaos::{self, Chaos, MAX_PAUSE};
use crate::state::{bad_request, with_cors, AppState};

/// `?token=` on admin routes.
#[derive(Debug, Deserialize)]
pub struct AdminQuery {
    token: Option<String>,
}

/// Admin routes: with `--admin-token`, the token is required; without it,
/// only loopback clients are served.
fn allowed(req: &HttpRequest, state: &AppState, query: &AdminQuery) -> bool {
    match &state.config.admin_token {
        Some(token) => {
            let given = query.token.as_deref().or_else(|| {
                req.headers()
                    .get("X-Admin-Token")
                    .and_then(|v| v.to_str().ok())
            });
            given == Some(token.as_str())
        }
        None => req.peer_addr().is_some_and(|a| a.ip().is_loopback()),
    }
}

fn forbidden() -> HttpResponse {
    HttpResponse::Forbidden()
        .body("admin routes need the server's --admin-token (?token=), or a loopback client\n")
}

/// `?fraction=` on `POST /admin/drop`.
#[derive(Debug, Deserialize)]
pub struct DropQuery {
    pub fraction: Option<f64>,
}

/// `POST /admin/drop`: closes every stream at once; with `?fraction=f`,
/// about that fraction of them (see `chaos`).
pub async fn drop(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AdminQuery>,
    fault: web::Query<DropQuery>,
) -> HttpResponse {
    if !allowed(&req, &state, &query) {
        return forbidden();
    }
    if let Some(fraction) = fault.fraction {
        if !(0.0..=1.0).contains(&fraction) {
            return bad_request(&state, "fraction must be between 0 and 1");
        }
        let body = chaos::fraction_body(&state.hub, fraction);
        tracing::info!(?body, "dropped a fraction of the streams on request");
        return with_cors(&state, StatusCode::OK).json(body);
    }
    let dropped = state.hub.drop_all();
    tracing::info!(dropped, "dropped every stream on request");
    with_cors(&state, StatusCode::OK).json(serde_json::json!({ "dropped": dropped }))
}

#[derive(Debug, Deserialize)]
pub struct RestartQuery {
    pause_ms: Option<u64>,
    mode: Option<String>,
}

/// `POST /admin/restart?pause_ms=N&mode=refuse|pause` (see `chaos` for the
/// two models of a restart).
pub async fn restart(
    req: HttpRequest,
    state: web::Data<AppState>,
    chaos: web::Data<Chaos>,
    admin: web::Query<AdminQuery>,
    query: web::Query<RestartQuery>,
) -> HttpResponse {
    if !allowed(&req, &state, &admin) {
        return forbidden();
    }
    let pause = Duration::from_millis(query.pause_ms.unwrap_or(1000));
    if pause > MAX_PAUSE {
        return bad_request(
            &state,
            format!(
                "pause_ms must be at most {} (a restart, not an outage)",
                MAX_PAUSE.as_millis()
            ),
        );
    }
    let mode = query.mode.as_deref().unwrap_or("refuse");
    let dropped = match mode {
        "refuse" => {
            chaos.refuse_for(pause);
            state.hub.drop_all()
        }
        "pause" => {
            let Some(handle) = chaos.handle() else {
                return HttpResponse::ServiceUnavailable().body("the server is not running yet\n");
            };
            let dropped = state.hub.drop_all();
            handle.pause().await;
            // The server acknowledges before its accept thread has acted on
            // it: give it a moment, so no connection slips in after the reply.
            tokio::time::sleep(Duration::from_millis(50)).await;
            actix_web::rt::spawn(async move {
                tokio::time::sleep(pause).await;
                handle.resume().await;
            });
            dropped
        }
        other => {
            return bad_request(
                &state,
                format!("mode is `refuse` or `pause`, not `{other}`"),
            )
        }
    };
    state.hub.stats.counters.restarts.inc();
    tracing::info!(dropped, ?pause, mode, "simulated a listener restart");
    HttpResponse::Ok().json(serde_json::json!({
        "dropped": dropped,
        "pause_ms": pause.as_millis() as u64,
        "mode": mode,
    }))
}
