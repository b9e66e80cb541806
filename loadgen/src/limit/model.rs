//! One configuration of the browser model, run against the real server:
//! profiles, tabs and streams go through per-group pools ([`Pool`]) exactly
//! as Chromium's do, over real connections; a plain GET is then queued in
//! the first group, and measured.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::origin::OriginClient;
use super::pool::{Pool, Ticket};
use crate::client::{ClientError, Dialer, Msg, Opener, Target};
use crate::measure::Timing;
use crate::result::{GetProbe, LimitCase, LimitCaseResult, Protocol, PER_STREAM_KEPT};
use crate::run::connection::{hold, ConnectionHook, Ended, Flow, OnMessage, Reconnect};

/// WebSockets one page may hold: the 256th fails at once in Chromium.
pub const WS_PER_PAGE: usize = 255;

/// How long a closing stream or socket may take before its task is dropped.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// A page opens each stream once: no reconnect; closing the page closes
/// its WebSockets politely.
const ONCE: Reconnect = Reconnect {
    reopen: false,
    retry: Duration::ZERO,
    backoff: false,
    close_on_stop: true,
};

/// The per-group limits in force.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub h1_per_host: usize,
    pub h2_streams: usize,
    /// The h2 origin announced SETTINGS_ENABLE_CONNECT_PROTOCOL: an h2
    /// case's WebSockets ride its connection.
    pub ws_over_h2: bool,
}

/// Pool group: (profile, scheme, host, port); the port and scheme follow
/// from the protocol, which is one per case.
type GroupKey = (usize, usize);

struct Group {
    pool: Pool,
    client: Arc<OriginClient>,
}

/// What one stream (or WebSocket) did, as the page would show it.
#[derive(Debug, Clone)]
struct Rec {
    group: usize,
    asked: Instant,
    granted: bool,
    first_event: Option<Duration>,
    protocol: Option<String>,
    failed: Option<String>,
    close: CancellationToken,
}

#[derive(Clone, Default)]
struct Recs(Arc<Mutex<Vec<Rec>>>);

impl Recs {
    fn push(&self, rec: Rec) -> usize {
        let mut v = self.lock();
        v.push(rec);
        v.len() - 1
    }
    fn update(&self, i: usize, f: impl FnOnce(&mut Rec)) {
        f(&mut self.lock()[i]);
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rec>> {
        self.0.lock().expect("no panics while records are locked")
    }
    fn snapshot(&self) -> Vec<Rec> {
        self.lock().clone()
    }
}

/// The host names of a case: each one is its own pool group.
pub fn host_names(protocol: Protocol, hosts: usize) -> Vec<String> {
    let first = match protocol {
        Protocol::H1 => ["127.0.0.1", "localhost"],
        // The certificate names `localhost` (the server's https_url) and 127.0.0.1.
        Protocol::H2 => ["localhost", "127.0.0.1"],
    };
    (0..hosts.max(1))
        .map(|i| match first.get(i) {
            Some(h) => h.to_string(),
            // Chromium resolves every *.localhost name to loopback.
            None => format!("shard{i}.localhost"),
        })
        .collect()
}

/// Runs one case and closes everything it opened.
pub async fn run_case(
    target: &Target,
    case: &LimitCase,
    limits: Limits,
    settle: Duration,
    get_cap: Duration,
) -> LimitCaseResult {
    let mut problems = Vec::new();
    let hosts = host_names(case.protocol, case.hosts);
    let all = CancellationToken::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<GroupKey, usize> = HashMap::new();
    let mut group = |groups: &mut Vec<Group>, profile: usize, host: usize| -> Option<usize> {
        if let Some(&g) = index.get(&(profile, host)) {
            return Some(g);
        }
        let (limit, client) = match case.protocol {
            Protocol::H1 => (
                limits.h1_per_host,
                OriginClient::h1(target.http_addr, &hosts[host]),
            ),
            Protocol::H2 => {
                let tls = target.tls.as_ref()?;
                (
                    limits.h2_streams,
                    OriginClient::h2(tls.addr, &hosts[host], &tls.h2),
                )
            }
        };
        groups.push(Group {
            pool: Pool::new(limit),
            client: Arc::new(client),
        });
        index.insert((profile, host), groups.len() - 1);
        Some(groups.len() - 1)
    };
    // WebSockets are outside the pools: each its own connection, or (RFC
    // 8441) a stream on the profile's h2 connection to the page's origin.
    let ws = Arc::new(Opener::ws(target.ws("/ws"), Dialer::default()));
    let ws_over_h2 = limits.ws_over_h2 && case.protocol == Protocol::H2;
    let streams = Recs::default();
    let sockets = Recs::default();
    let mut tasks = JoinSet::new();
    let per_profile = case.tabs * case.streams_per_tab;
    // Shared-stream workaround: one real stream per profile, fanned out to
    // every tab's streams (a SharedWorker or a leader tab does the fan-out).
    let real_per_profile = if case.shared_stream { 1 } else { per_profile };
    for profile in 0..case.profiles {
        for i in 0..real_per_profile {
            let Some(g) = group(&mut groups, profile, i % hosts.len()) else {
                problems.push("HTTP/2 needs the server's TLS listener".to_string());
                break;
            };
            let ticket = groups[g].pool.request();
            let close = all.child_token();
            let idx = streams.push(rec(g, !ticket.is_queued(), close.clone()));
            let client = groups[g].client.clone();
            tasks.spawn(hold_stream(ticket, client, streams.clone(), idx, close));
        }
        for _tab in 0..case.tabs {
            for w in 0..case.ws_per_tab {
                let close = all.child_token();
                let idx = sockets.push(rec(0, true, close.clone()));
                if w >= WS_PER_PAGE {
                    sockets.update(idx, |r| {
                        r.failed = Some(format!("more than {WS_PER_PAGE} WebSockets in one page"))
                    });
                    continue;
                }
                let shared = match ws_over_h2 {
                    true => group(&mut groups, profile, 0)
                        .and_then(|g| groups[g].client.opener().ws_h2_sharing("/ws").map(Arc::new)),
                    false => None,
                };
                let opener = shared.unwrap_or_else(|| ws.clone());
                tasks.spawn(hold_socket(opener, sockets.clone(), idx, close));
            }
        }
    }

    // Settle: every stream that got a slot, and every WebSocket, is open or
    // failed. Queued streams cannot move until something closes.
    let deadline = Instant::now() + settle;
    loop {
        let settled = |r: &Rec| r.first_event.is_some() || r.failed.is_some();
        let s = streams.snapshot();
        let w = sockets.snapshot();
        let done = s.iter().filter(|r| r.granted).all(settled) && w.iter().all(settled);
        if done || Instant::now() >= deadline {
            if !done {
                problems.push(format!(
                    "not every connected stream had its first event within {settle:?}"
                ));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = streams.snapshot();
    let w = sockets.snapshot();
    let fan_out = if case.shared_stream { per_profile } else { 1 };
    let count = |f: &dyn Fn(&Rec) -> bool| s.iter().filter(|r| f(r)).count() * fan_out;
    let opened = count(&|r| r.first_event.is_some() && r.failed.is_none());
    let failed = count(&|r| r.failed.is_some());
    let queued = count(&|r| !r.granted && r.failed.is_none());
    let asked = case.profiles * per_profile;
    let mut first_event = Timing::default();
    let mut per_stream = Vec::new();
    let mut protocols_seen = BTreeMap::new();
    for r in &s {
        if let Some(p) = &r.protocol {
            *protocols_seen.entry(p.clone()).or_default() += fan_out as u64;
        }
        for _ in 0..fan_out {
            if let Some(d) = r.first_event {
                first_event.record(d);
            }
            if per_stream.len() < PER_STREAM_KEPT {
                per_stream.push(r.first_event.map(ms));
            }
        }
    }
    let mut ws_first = Timing::default();
    for d in w.iter().filter_map(|r| r.first_event) {
        ws_first.record(d);
    }
    let connections = groups.iter().map(|g| g.client.connections()).sum();
    let peak_in_use = groups.iter().map(|g| g.pool.peak()).max().unwrap_or(0);

    let get = match groups.first() {
        Some(g) => probe_get(g, 0, &streams, get_cap).await,
        None => GetProbe::not_run(get_cap),
    };

    all.cancel();
    let joined = tokio::time::timeout(CLOSE_LIMIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        problems.push("some streams did not close in time".into());
        tasks.abort_all();
    }
    // With more streams pending than open, closing every open one only lets
    // pending streams in: the GET waiting on is the browser's behaviour, not a
    // failure. It is a problem only if enough slots freed and it still waited.
    if get.stalled && get.after_release_ms.is_none() && get.released > get.queued_behind {
        problems.push(format!(
            "the GET still waited {} ms after {} stream(s) closed",
            get.cap_ms, get.released
        ));
    }
    if failed > 0 {
        let why = s.iter().find_map(|r| r.failed.clone()).unwrap_or_default();
        problems.push(format!("{failed} stream(s) failed: {why}"));
    }
    let ws_failed = w.iter().filter(|r| r.failed.is_some()).count();
    LimitCaseResult {
        label: case.label(),
        case: case.clone(),
        protocol_name: case.protocol.http_name().to_string(),
        workaround: case.workaround().to_string(),
        host_names: hosts,
        pool_limit: match case.protocol {
            Protocol::H1 => limits.h1_per_host,
            Protocol::H2 => limits.h2_streams,
        },
        pools: groups.len(),
        streams_asked: asked,
        streams_opened: opened,
        streams_pending: asked - opened - failed,
        streams_queued: queued,
        streams_failed: failed,
        connections,
        peak_slots_in_use: peak_in_use,
        protocols_seen,
        first_event_us: first_event.summary(),
        first_event_ms: per_stream,
        get,
        ws_asked: w.len(),
        ws_opened: w
            .iter()
            .filter(|r| r.first_event.is_some() && r.failed.is_none())
            .count(),
        ws_failed,
        ws_connections: Some(if ws_over_h2 { 0 } else { w.len() - ws_failed }),
        ws_first_event_us: ws_first.summary(),
        problems,
    }
}

/// A stream just asked for; `granted`: it got a slot at once.
fn rec(group: usize, granted: bool, close: CancellationToken) -> Rec {
    Rec {
        group,
        asked: Instant::now(),
        granted,
        first_event: None,
        protocol: None,
        failed: None,
        close,
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A plain GET queued in `group` behind whatever holds and waits there.
/// Stalled at the cap, the oldest open streams are closed (as many as the
/// GET needs, first come first served) and the wait goes on.
async fn probe_get(group: &Group, group_index: usize, streams: &Recs, cap: Duration) -> GetProbe {
    let ticket: Ticket = group.pool.request();
    let ahead = ticket.ahead();
    let queued = ticket.is_queued();
    let client = group.client.clone();
    let asked = Instant::now();
    let mut task = tokio::spawn(async move {
        let slot = ticket.wait().await;
        let r = client.get("/info").await;
        drop(slot);
        (r, Instant::now())
    });
    let mut probe = GetProbe::not_run(cap);
    probe.issued = true;
    probe.queued_behind = if queued { ahead } else { 0 };
    probe.slot_free = !queued;
    let finish = |probe: &mut GetProbe, r: Result<_, _>, at: Instant| match r {
        Ok(Ok(status)) => {
            probe.status = Some(status);
            probe.latency_ms = Some(ms(at - asked));
        }
        Ok(Err(e)) => probe.error = Some(format!("{e}")),
        Err(e) => probe.error = Some(format!("the GET task failed: {e}")),
    };
    match tokio::time::timeout(cap, &mut task).await {
        Ok(r) => {
            let (r, at) = match r {
                Ok((r, at)) => (Ok(r), at),
                Err(e) => (Err(e), Instant::now()),
            };
            finish(&mut probe, r, at);
            return probe;
        }
        Err(_) => probe.stalled = true,
    }
    // Free as many slots as the GET needs: the ones ahead of it, then its own.
    let open: Vec<CancellationToken> = streams
        .snapshot()
        .into_iter()
        .filter(|r| r.group == group_index && r.first_event.is_some() && r.failed.is_none())
        .map(|r| r.close)
        .collect();
    let release = (ahead + 1).min(open.len());
    let released_at = Instant::now();
    for close in open.iter().take(release) {
        close.cancel();
    }
    probe.released = release;
    match tokio::time::timeout(cap, &mut task).await {
        Ok(Ok((r, at))) => {
            probe.after_release_ms = Some(ms(at.saturating_duration_since(released_at)));
            finish(&mut probe, Ok(r), at);
        }
        Ok(Err(e)) => finish(&mut probe, Err(e), Instant::now()),
        Err(_) => task.abort(),
    }
    probe
}

/// One EventSource: waits for its pool slot, opens, reads until closed.
async fn hold_stream(
    ticket: Ticket,
    client: Arc<OriginClient>,
    recs: Recs,
    idx: usize,
    close: CancellationToken,
) {
    let slot = tokio::select! {
        slot = ticket.wait() => slot,
        _ = close.cancelled() => return,
    };
    recs.update(idx, |r| r.granted = true);
    let mut page = PageStream::new(&recs, idx);
    hold(client.opener(), 0, &mut page, ONCE, &close, None).await;
    // The connection closed (in `hold`) before the slot passes on, as in the browser.
    drop(slot);
}

/// One WebSocket: outside every pool, its own connection.
async fn hold_socket(opener: Arc<Opener>, recs: Recs, idx: usize, close: CancellationToken) {
    let mut page = PageStream::new(&recs, idx);
    hold(&opener, 0, &mut page, ONCE, &close, None).await;
}

/// What the page sees of one stream or socket: the time of its first event
/// (and the protocol the server's hello names), or why it failed.
struct PageStream<'a> {
    recs: &'a Recs,
    idx: usize,
    first: bool,
}

impl<'a> PageStream<'a> {
    fn new(recs: &'a Recs, idx: usize) -> Self {
        PageStream {
            recs,
            idx,
            first: true,
        }
    }

    fn failed(&self, e: &ClientError) {
        self.recs
            .update(self.idx, |r| r.failed = Some(e.to_string()));
    }
}

impl OnMessage<Msg> for PageStream<'_> {
    fn message(&mut self, msg: Msg) -> Flow {
        // The `retry:` field and keep-alives are not events.
        if self.first && matches!(msg, Msg::Hello { .. } | Msg::Tick { .. } | Msg::Gap { .. }) {
            self.first = false;
            self.recs.update(self.idx, |r| {
                r.first_event = Some(r.asked.elapsed());
                if let Msg::Hello { protocol, .. } = msg {
                    r.protocol = Some(protocol);
                }
            });
        }
        Flow::Continue
    }
}

impl ConnectionHook for PageStream<'_> {
    fn open_failed(&mut self, error: ClientError) {
        self.failed(&error);
    }

    fn ended(&mut self, how: Ended) -> Flow {
        if let Ended::Failed(e) = &how {
            self.failed(e);
        }
        Flow::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_distinct_pools() {
        assert_eq!(host_names(Protocol::H1, 1), ["127.0.0.1"]);
        assert_eq!(
            host_names(Protocol::H1, 3),
            ["127.0.0.1", "localhost", "shard2.localhost"]
        );
        assert_eq!(host_names(Protocol::H2, 2), ["localhost", "127.0.0.1"]);
    }
}
