//! One SSE stream watched for part of the run's time: its headers, how
//! soon the first byte comes, how events arrive (one by one, or held back
//! and let out in bursts), keep-alives and an idle cut, `retry:`; then a
//! second stream resumed with `Last-Event-ID`.

use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use super::check::{budget, Check, DoctorError};
use super::origin::{dialer, Place};
use crate::client::event_stream::{EventStreamParser, Item};
use crate::client::{
    sse_request, FieldDecoder, Io, MessageDecoder as _, Msg, RawEvent, Stamp, ALPN_H2, ALPN_HTTP1,
};

/// Part of the run's time the first stream is watched.
const WATCH_SHARE: f64 = 0.45;
/// A median lateness above the stream's best by this much is held back.
const HELD_BACK: Duration = Duration::from_millis(100);
/// ... and by this much is worth a warning.
const LATE: Duration = Duration::from_millis(30);

/// One event as it arrived.
#[derive(Debug, Clone)]
struct Arrival {
    id: Option<String>,
    /// The server's stamp (where `--stamp-field` says; the feed server's
    /// `sent_unix_ns` by default), if the event carries a readable one.
    stamp_ns: Option<u64>,
    arrived_ns: u64,
    /// The body chunk that completed it.
    chunk: usize,
}

/// What one stream showed.
#[derive(Debug, Default)]
struct Watched {
    first_byte: Option<Duration>,
    retry_ms: Option<u64>,
    comments: usize,
    events: Vec<Arrival>,
    /// The stream ended (after this long) while watched.
    ended_after: Option<Duration>,
    error: Option<String>,
}

/// Opens the stream at `place.url` on a fresh connection (ALPN h2 if the
/// server takes it), with `Last-Event-ID` when given.
async fn open(place: &Place, last_id: Option<&str>) -> Result<http::Response<Incoming>, String> {
    let url = place.url.as_str();
    let endpoint = place
        .endpoint(url, &[ALPN_H2, ALPN_HTTP1])
        .map_err(|e| e.to_string())?;
    let io = dialer()
        .connect(&endpoint, 0)
        .await
        .map_err(|e| e.to_string())?;
    let h2 = matches!(&io, Io::Tls(t) if t.get_ref().1.alpn_protocol() == Some(ALPN_H2));
    let mut req = sse_request(&endpoint, h2, None);
    let headers = req.headers_mut();
    // Invite compression: a stream that takes it is buffered by the compressor.
    headers.insert(
        http::header::ACCEPT_ENCODING,
        http::HeaderValue::from_static("gzip, deflate, br"),
    );
    if let Some(id) = last_id.and_then(|id| http::HeaderValue::from_str(id).ok()) {
        headers.insert("last-event-id", id);
    }
    let shown = |e: hyper::Error| format!("{url}: {e}");
    if h2 {
        let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(shown)?;
        tokio::spawn(conn);
        send.ready().await.map_err(shown)?;
        send.send_request(req).await.map_err(shown)
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(shown)?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(shown)
    }
}

/// Reads `body` for `window` (or until `stop_after_id_events` events with
/// an id have come), parsing events as they complete; events of another
/// type than `--event` are left out.
async fn watch(
    mut body: Incoming,
    decoder: &FieldDecoder,
    window: Duration,
    stop_after_id_events: usize,
) -> Watched {
    let started = Instant::now();
    let deadline = started + window;
    let mut parser = EventStreamParser::new();
    let mut w = Watched::default();
    let mut chunk = 0;
    while let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await {
        let data = match frame {
            None => {
                w.ended_after = Some(started.elapsed());
                break;
            }
            Some(Err(e)) => {
                w.ended_after = Some(started.elapsed());
                w.error = Some(e.to_string());
                break;
            }
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        w.first_byte.get_or_insert(started.elapsed());
        chunk += 1;
        let now = server::event::unix_now_ns();
        let fed = parser.feed(&data, |item| match item {
            Item::Event {
                event_type,
                data,
                id,
            } => {
                let raw = RawEvent {
                    event_type,
                    id,
                    data,
                };
                // The SSE id is kept as sent: it is what Last-Event-ID
                // carries back when resuming.
                if let Ok(Some(Msg::Event { stamp, .. })) = decoder.decode(raw, now) {
                    w.events.push(Arrival {
                        id: id.map(str::to_string),
                        stamp_ns: match stamp {
                            Stamp::Sent(ns) => Some(ns),
                            _ => None,
                        },
                        arrived_ns: now,
                        chunk,
                    });
                }
            }
            Item::Comment(_) => w.comments += 1,
            Item::Retry(ms) => w.retry_ms = Some(ms),
        });
        if let Err(e) = fed {
            w.error = Some(format!("malformed event stream: {e}"));
            break;
        }
        let with_ids = w.events.iter().filter(|e| e.id.is_some()).count();
        if stop_after_id_events > 0 && with_ids >= stop_after_id_events {
            break;
        }
    }
    w
}

/// The stream's checks, in order.
pub async fn checks(
    place: &Place,
    decoder: &FieldDecoder,
    deadline: Instant,
    out: &mut Vec<Check>,
) -> Result<(), DoctorError> {
    let total = budget(deadline, Duration::from_secs(3600));
    let opened =
        tokio::time::timeout(budget(deadline, Duration::from_secs(5)), open(place, None)).await;
    let res = match opened {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            out.push(Check::fail(
                "stream",
                e,
                "is the server running at that URL?",
            ));
            return Ok(());
        }
        Err(_) => {
            out.push(Check::fail(
                "stream",
                "no response head in time",
                "is the server running at that URL?",
            ));
            return Ok(());
        }
    };
    if res.status() != http::StatusCode::OK {
        out.push(Check::fail(
            "stream",
            format!("answered {} instead of a stream", res.status()),
            "check the URL and the route",
        ));
        return Ok(());
    }
    head_checks(res.headers(), out);
    let window = total.mul_f64(WATCH_SHARE).max(Duration::from_secs(1));
    let w = watch(res.into_body(), decoder, window, 0).await;
    out.push(match w.first_byte {
        Some(t) if t < Duration::from_secs(1) => Check::pass("first byte", format!("after {} ms", t.as_millis())),
        Some(t) => Check::warn(
            "first byte",
            format!("after {} ms", t.as_millis()),
            "send the first bytes (`retry:`, a comment or a hello event) at once, so clients and proxies see the stream start",
        ),
        None => Check::fail(
            "first byte",
            format!("nothing within {} ms", window.as_millis()),
            "something holds the response back: nginx `proxy_buffering off;` (or `X-Accel-Buffering: no`), no compression on the stream",
        ),
    });
    out.push(buffering(&w, window, decoder));
    out.push(match w.retry_ms {
        Some(ms) => Check::pass("retry", format!("retry: {ms} ms")),
        None => Check::warn(
            "retry",
            "no `retry:` field",
            "send `retry: <ms>` first: EventSource otherwise waits a delay of the browser's choosing before reconnecting",
        ),
    });
    out.push(idle(&w, window));
    resume(place, decoder, &w, deadline, out).await;
    Ok(())
}

fn head_checks(headers: &http::HeaderMap, out: &mut Vec<Check>) {
    let get = |name: http::header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = get(http::header::CONTENT_TYPE);
    out.push(if content_type.starts_with("text/event-stream") {
        Check::pass("content type", content_type)
    } else {
        Check::fail(
            "content type",
            format!("`{content_type}`"),
            "serve the stream as `Content-Type: text/event-stream` (EventSource refuses anything else)",
        )
    });
    let cache = get(http::header::CACHE_CONTROL);
    out.push(
        if cache.contains("no-cache") || cache.contains("no-store") {
            Check::pass("Cache-Control", cache)
        } else {
            Check::warn(
                "Cache-Control",
                if cache.is_empty() {
                    "none".into()
                } else {
                    format!("`{cache}`")
                },
                "send `Cache-Control: no-cache` so no cache or proxy keeps the stream",
            )
        },
    );
    let encoding = get(http::header::CONTENT_ENCODING);
    out.push(if encoding.is_empty() || encoding == "identity" {
        Check::pass("compression", "none, although the request offered gzip, deflate and br")
    } else {
        Check::fail(
            "compression",
            format!("Content-Encoding: {encoding}: the compressor holds events back until its buffer fills"),
            "leave text/event-stream out of compression (nginx `gzip_types`, HAProxy `compression type`), or send `Content-Encoding: identity`",
        )
    });
}

/// Events one by one, or held back and let out together.
fn buffering(w: &Watched, window: Duration, decoder: &FieldDecoder) -> Check {
    let events = &w.events;
    let stamped: Vec<u64> = events
        .iter()
        .filter_map(|e| Some(e.arrived_ns.saturating_sub(e.stamp_ns?)))
        .collect();
    let chunks = events
        .iter()
        .map(|e| e.chunk)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let per_chunk = events.len() as f64 / chunks.max(1) as f64;
    let fix = "nginx: `proxy_buffering off;` (or the response header `X-Accel-Buffering: no`); no compression on event streams";
    // Many events per read: let out together, not as they were made.
    let bursty = events.len() >= 10 && per_chunk > 3.0;
    if stamped.len() >= 5 {
        let mut sorted = stamped.clone();
        sorted.sort_unstable();
        let spread = Duration::from_nanos(sorted[sorted.len() / 2] - sorted[0]);
        let seen = format!(
            "{} events: median lateness {} ms above the earliest, {per_chunk:.1} events per read",
            sorted.len(),
            spread.as_millis()
        );
        return if spread > HELD_BACK || (bursty && spread > LATE) {
            Check::fail("buffering", format!("held back: {seen}"), fix)
        } else if spread > LATE || bursty {
            Check::warn("buffering", format!("late: {seen}"), fix)
        } else {
            Check::pass("buffering", format!("flat: {seen}"))
        };
    }
    if bursty {
        return Check::fail(
            "buffering",
            format!(
                "{} events arrived in {chunks} reads ({per_chunk:.1} per read)",
                events.len()
            ),
            fix,
        );
    }
    let field = decoder.stamp_shown().unwrap_or_default();
    Check::warn(
        "buffering",
        format!(
            "{} events in {} ms{}: too few to judge",
            events.len(),
            window.as_millis(),
            if stamped.is_empty() { format!(", none with a readable stamp at {field}") } else { String::new() }
        ),
        "raise --max-wait, or the feed's rate; a send time in each event's JSON (`--stamp-field`, `--stamp-unit`) lets lateness be measured",
    )
}

/// An idle cut seen, keep-alives seen, or neither.
fn idle(w: &Watched, window: Duration) -> Check {
    if let Some(after) = w.ended_after {
        return Check::fail(
            "idle timeout",
            format!(
                "the stream ended after {:.1} s{}",
                after.as_secs_f64(),
                w.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            "a proxy's idle timeout cuts quiet streams (nginx `proxy_read_timeout`, 60 s; HAProxy `timeout server`/`timeout tunnel`): raise it, and send keep-alive comments more often than it",
        );
    }
    if w.comments > 0 {
        return Check::pass(
            "idle timeout",
            format!(
                "{} keep-alive comment(s) in {:.1} s, stream still open",
                w.comments,
                window.as_secs_f64()
            ),
        );
    }
    Check::warn(
        "idle timeout",
        format!("still open after {:.1} s; no keep-alive comment seen (events kept it busy)", window.as_secs_f64()),
        "send a `:` comment when the feed is quiet, more often than any proxy's idle timeout (nginx `proxy_read_timeout` 60 s)",
    )
}

/// Reconnects with `Last-Event-ID` set to the second-last id seen: the
/// first event must be the one that followed it.
async fn resume(
    place: &Place,
    decoder: &FieldDecoder,
    w: &Watched,
    deadline: Instant,
    out: &mut Vec<Check>,
) {
    let ids: Vec<&str> = w.events.iter().filter_map(|e| e.id.as_deref()).collect();
    let [.., from, want] = ids.as_slice() else {
        out.push(Check::warn(
            "Last-Event-ID",
            format!("{} event(s) with an id: cannot test resume", ids.len()),
            "give every event an `id:` so a reconnecting EventSource can resume with Last-Event-ID",
        ));
        return;
    };
    let wait = budget(deadline, Duration::from_secs(5));
    let got = tokio::time::timeout(wait, async {
        let res = open(place, Some(from)).await?;
        let again = watch(res.into_body(), decoder, wait, 1).await;
        Ok::<_, String>(again.events.into_iter().find_map(|e| e.id))
    })
    .await;
    let first = match got {
        Ok(Ok(Some(id))) => id,
        Ok(Ok(None)) | Err(_) => {
            out.push(Check::warn(
                "Last-Event-ID",
                format!(
                    "no event with an id within {} ms of resuming after {from}",
                    wait.as_millis()
                ),
                "raise --max-wait",
            ));
            return;
        }
        Ok(Err(e)) => {
            out.push(Check::fail(
                "Last-Event-ID",
                format!("reconnecting: {e}"),
                "the stream must accept a reconnect",
            ));
            return;
        }
    };
    let numbers = (first.parse::<u64>(), want.parse::<u64>());
    out.push(match numbers {
        _ if first == *want => Check::pass(
            "Last-Event-ID",
            format!("resumed after {from} with {first}: nothing lost, nothing repeated"),
        ),
        (Ok(f), Ok(w)) if f < w => Check::warn(
            "Last-Event-ID",
            format!("resumed after {from} with {first}: events repeated"),
            "send only events after the Last-Event-ID",
        ),
        _ => Check::fail(
            "Last-Event-ID",
            format!("resumed after {from} with {first}, expected {want}: events in between are lost"),
            "read the Last-Event-ID request header and replay what followed it (keep a replay buffer)",
        ),
    });
}
