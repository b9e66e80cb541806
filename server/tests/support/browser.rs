//! A real headless Chromium for the page's end-to-end tests, driven over the
//! DevTools protocol by chromiumoxide.
//!
//! Debian's `chromium` is used as installed: chromiumoxide's `fetcher` stays
//! off because no browser can be downloaded here (and a test should exercise
//! the browser people actually run). Each browser gets a fresh profile, so no
//! cache, certificate decision or connection pool leaks between tests.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use chromiumoxide::cdp::browser_protocol::emulation::{
    ClearDeviceMetricsOverrideParams, SetDeviceMetricsOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotParams;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::Semaphore;

/// Every browser test is bounded by this, browser start included.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// How often `wait_until` asks the page again: fast enough to see a 5 Hz
/// feed tick by tick, slow enough not to load a 2-core machine.
const POLL: Duration = Duration::from_millis(100);

/// At most this many browsers at once: each is several processes, and on a
/// 2-core machine five at once (one per test) starve the feed's timing.
static BROWSER_SLOTS: Semaphore = Semaphore::const_new(2);

/// Chromium's flags, without the leading `--` (chromiumoxide adds it:
/// `"--headless"` would become `----headless`, silently ignored).
const FLAGS: [&str; 11] = [
    "headless",
    "disable-gpu",
    "disable-quic",
    "no-first-run",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    // A headless page is never in the foreground: keep its timers (the page
    // renders every 250 ms) running at full rate.
    "disable-background-timer-throttling",
    "disable-renderer-backgrounding",
    "hide-scrollbars",
    "mute-audio",
];

const INSTALL_HINT: &str = "apt-get install -y chromium chromium-driver";

/// The browser binary: `$CHROMIUM`, else `/usr/bin/chromium`, else
/// `chromium` on `PATH`; or why there is none.
pub fn find_chromium() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        // Set on purpose: a wrong path is reported, not replaced by a guess.
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("CHROMIUM={} is not a file", path.display()))
        };
    }
    let debian = Path::new("/usr/bin/chromium");
    if debian.is_file() {
        return Ok(debian.to_path_buf());
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("chromium"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| "not at /usr/bin/chromium nor on PATH".to_string())
}

/// The browser for test `name`, or `None` when the test should be skipped.
///
/// A machine without Chromium skips loudly rather than failing, so that
/// `cargo test` works anywhere; CI sets `WORKBENCH_REQUIRE_BROWSER=1`, where
/// a missing browser must fail instead of silently testing nothing.
pub fn chromium_or_skip(name: &str) -> Option<PathBuf> {
    let why = match find_chromium() {
        Ok(path) => return Some(path),
        Err(why) => why,
    };
    if std::env::var("WORKBENCH_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!(
            "browser test {name}: no chromium found ({why}) and WORKBENCH_REQUIRE_BROWSER=1; \
             install with: {INSTALL_HINT} (or set CHROMIUM to the browser's path)"
        );
    }
    // Straight to the process's stderr: `eprintln!` would be captured by the
    // test harness and never shown for a test that passes.
    let _ = writeln!(
        std::io::stderr(),
        "\n********\nSKIPPED: browser test {name}: no chromium found ({why}); install with: {INSTALL_HINT}\n********\n"
    );
    None
}

/// Runs one browser test: skips it without a browser, waits for a browser
/// slot, then bounds the body by [`TEST_LIMIT`].
///
/// On timeout or panic the body's future is dropped, and with it its
/// [`Chromium`], whose drop kills the browser.
pub async fn run_browser_test<F, Fut>(name: &str, body: F)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Some(exe) = chromium_or_skip(name) else {
        return;
    };
    // Waiting for a slot is not the test's time: outside the limit.
    let _slot = BROWSER_SLOTS
        .acquire()
        .await
        .expect("the semaphore is never closed");
    match tokio::time::timeout(TEST_LIMIT, body(exe)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("browser test {name} failed: {e:#}"),
        Err(_) => panic!("browser test {name} did not finish within {TEST_LIMIT:?}"),
    }
}

/// A launched Chromium. Dropping it kills the browser and removes its
/// profile, so a failing or timed-out test leaves nothing running;
/// [`Chromium::close`] is the polite way.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    /// Declared last: removed after the browser is gone.
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts `exe` headless with a fresh profile at a desktop size.
    ///
    /// `trust_spki` is the server's `spki_sha256`: Chromium then accepts the
    /// generated self-signed certificate through
    /// `--ignore-certificate-errors-spki-list`, the documented way, instead of
    /// ignoring every certificate error.
    pub async fn launch(exe: &Path, trust_spki: Option<&str>) -> anyhow::Result<Chromium> {
        let profile = tempfile::Builder::new()
            .prefix("workbench-chromium-")
            .tempdir()
            .context("creating a profile directory")?;
        let viewport = Viewport {
            width: 1280,
            height: 900,
            ..Viewport::default()
        };
        let mut config = BrowserConfig::builder()
            .chrome_executable(exe)
            // Exactly our flags (chromiumoxide's defaults include
            // `--enable-automation` and feature switches we do not want).
            .disable_default_args()
            .args(FLAGS)
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(viewport.width, viewport.height)
            .viewport(viewport)
            // Certificates are trusted by the SPKI flag below, not by
            // chromiumoxide telling the browser to ignore every error.
            .respect_https_errors()
            .launch_timeout(Duration::from_secs(30));
        if let Some(spki) = trust_spki {
            config = config.arg(("ignore-certificate-errors-spki-list", spki));
        }
        let config = config.build().map_err(anyhow::Error::msg)?;
        let (browser, mut handler) = Browser::launch(config)
            .await
            .with_context(|| format!("launching {}", exe.display()))?;
        // The handler is the DevTools connection: nothing moves unless polled.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Ok(Chromium {
            browser,
            handler,
            _profile: profile,
        })
    }

    /// Opens `url` in a new tab, with console errors collected from before
    /// the first script runs.
    pub async fn open(&self, url: &str) -> anyhow::Result<(Page, ConsoleErrors)> {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .context("opening a tab")?;
        let errors = ConsoleErrors::attach(&page).await?;
        page.goto(url)
            .await
            .with_context(|| format!("loading {url}"))?;
        Ok((page, errors))
    }

    /// Closes the browser and waits for it to exit (killing it if it does not).
    pub async fn close(mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = self.browser.close().await;
            let _ = self.browser.wait().await;
        })
        .await;
        if closed.is_err() {
            let _ = self.browser.kill().await;
        }
    }
}

impl Drop for Chromium {
    /// Kills a browser that was not closed (a failed or timed-out test) and
    /// waits briefly for it to exit, so the profile is removed after the
    /// browser stopped writing to it, not before.
    fn drop(&mut self) {
        self.handler.abort();
        if let Some(child) = self.browser.get_mut_child() {
            let child = child.as_mut_inner();
            if let Ok(None) = child.try_wait() {
                let _ = child.start_kill();
                let deadline = std::time::Instant::now() + Duration::from_secs(3);
                while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Console errors and uncaught exceptions of one page, as text.
///
/// Three DevTools events cover what a person would see in red in the
/// console: `console.error` calls (`Runtime.consoleAPICalled`), uncaught
/// exceptions and rejections (`Runtime.exceptionThrown`) and the browser's
/// own errors such as a failed load or a blocked request (`Log.entryAdded`).
#[derive(Clone, Default)]
pub struct ConsoleErrors {
    seen: Arc<Mutex<Vec<String>>>,
}

impl ConsoleErrors {
    async fn attach(page: &Page) -> anyhow::Result<ConsoleErrors> {
        let errors = ConsoleErrors::default();
        let mut console = page.event_listener::<EventConsoleApiCalled>().await?;
        let mut exceptions = page.event_listener::<EventExceptionThrown>().await?;
        let mut log = page.event_listener::<EventEntryAdded>().await?;
        let seen = errors.seen.clone();
        tokio::spawn(async move {
            loop {
                let text = tokio::select! {
                    Some(e) = console.next() => {
                        if e.r#type != ConsoleApiCalledType::Error {
                            continue;
                        }
                        let args: Vec<String> = e
                            .args
                            .iter()
                            .map(|a| match (&a.value, &a.description) {
                                (Some(v), _) => v.to_string(),
                                (None, Some(d)) => d.clone(),
                                (None, None) => format!("{:?}", a.r#type),
                            })
                            .collect();
                        format!("console.error: {}", args.join(" "))
                    }
                    Some(e) = exceptions.next() => {
                        let d = &e.exception_details;
                        let what = d
                            .exception
                            .as_ref()
                            .and_then(|x| x.description.clone())
                            .unwrap_or_else(|| d.text.clone());
                        format!(
                            "uncaught: {what} at {}:{}",
                            d.url.as_deref().unwrap_or("?"),
                            d.line_number
                        )
                    }
                    Some(e) = log.next() => {
                        if e.entry.level != LogEntryLevel::Error {
                            continue;
                        }
                        let url = e.entry.url.as_deref().unwrap_or("");
                        format!("log ({:?}): {} {url}", e.entry.source, e.entry.text)
                    }
                    else => break,
                };
                seen.lock().expect("no panics while held").push(text);
            }
        });
        page.enable_log().await?;
        Ok(errors)
    }

    /// Everything seen so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().expect("no panics while held"))
    }

    /// Fails with the list if there was any.
    pub fn assert_none(&self, when: &str) -> anyhow::Result<()> {
        let seen = self.take();
        if !seen.is_empty() {
            bail!("console errors {when}:\n  {}", seen.join("\n  "));
        }
        Ok(())
    }
}

/// Evaluates `expr` in the page and returns its value as JSON (promises are
/// awaited). The value crosses the protocol as a JSON string, so getters
/// such as `window.workbench`'s are read in the page, not lost on the way.
pub async fn eval_json(page: &Page, expr: &str) -> anyhow::Result<Value> {
    let wrapped = format!("(async () => JSON.stringify(await ({expr})) ?? 'null')()");
    let params = EvaluateParams::builder()
        .expression(wrapped)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .map_err(anyhow::Error::msg)?;
    let text: String = page
        .evaluate_expression(params)
        .await
        .with_context(|| format!("evaluating {expr}"))?
        .into_value()
        .with_context(|| format!("reading the value of {expr}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the value of {expr}: {text}"))
}

/// Polls `predicate` (a JS expression) until it is truthy, and fails after
/// `limit` with the last value of `show` (a JS expression that explains the
/// state). Polling, not sleeping: on a loaded machine things take longer.
pub async fn wait_until(
    page: &Page,
    predicate: &str,
    show: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if eval_json(page, &format!("Boolean({predicate})")).await? == Value::Bool(true) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let state = eval_json(page, show).await?;
            bail!("after {limit:?}, still not `{predicate}`; {show} = {state}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Clicks the element matching `selector` with a real mouse event.
pub async fn click(page: &Page, selector: &str) -> anyhow::Result<()> {
    page.find_element(selector)
        .await
        .with_context(|| format!("finding {selector}"))?
        .click()
        .await
        .with_context(|| format!("clicking {selector}"))?;
    Ok(())
}

/// `target/browser-artifacts`: `$CARGO_TARGET_DIR` if set (relative to the
/// workspace), else the workspace's `target`. Git ignores it.
pub fn artifacts_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate sits in the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace.join(dir))
        .unwrap_or_else(|| workspace.join("target"));
    target.join("browser-artifacts")
}

/// Saves a full-page PNG of the page as it is now to
/// `<artifacts>/<name>.png`, for a person to look at after a run.
pub async fn screenshot(page: &Page, name: &str) -> anyhow::Result<PathBuf> {
    let path = artifacts_dir().join(format!("{name}.png"));
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))
        .with_context(|| format!("creating {}", path.display()))?;
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
        .await
        .with_context(|| format!("saving {}", path.display()))?;
    Ok(path)
}

/// Like [`screenshot`], with the page laid out as on a phone `width` CSS
/// pixels wide (mobile viewport), the whole page's height. Returns the
/// page's scroll width there: more than `width` means something overflows
/// sideways, which a person on a phone would have to pan to see.
pub async fn screenshot_at_width(page: &Page, name: &str, width: i64) -> anyhow::Result<i64> {
    let path = artifacts_dir().join(format!("{name}.png"));
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))
        .with_context(|| format!("creating {}", path.display()))?;
    page.execute(SetDeviceMetricsOverrideParams::new(width, 844, 1.0, true))
        .await?;
    // Let the page re-lay out and redraw its chart at the new size (it
    // renders every 250 ms), then grow the viewport to the page's height.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let size = eval_json(
        page,
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]",
    )
    .await?;
    let (scroll_width, height) = (size[0].as_i64(), size[1].as_i64());
    let (scroll_width, height) = scroll_width.zip(height).context("reading the page size")?;
    page.execute(SetDeviceMetricsOverrideParams::new(
        width, height, 1.0, true,
    ))
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shot = page
        .execute(CaptureScreenshotParams::builder().build())
        .await;
    page.execute(ClearDeviceMetricsOverrideParams {}).await?;
    let data: String = shot?.result.data.into();
    let png = base64_decode(&data).context("decoding the screenshot")?;
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    Ok(scroll_width)
}

fn base64_decode(data: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
}
