//! `report.html` in a real Chromium 1,280 px wide, the width of a laptop
//! screen: the page never scrolls sideways (a table wider than the page
//! scrolls in its own box), and the Answer starts on the first screen.
//!
//! Skips loudly without Chromium (`WORKBENCH_REQUIRE_BROWSER=1` fails
//! instead).

use anyhow::{ensure, Context as _};
use loadgen::result::RunResult;

#[path = "../../server/tests/support/browser.rs"]
#[allow(dead_code)]
mod browser;

use browser::{eval_json, run_browser_test, screenshot, Chromium};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_fits_1280_px_and_answers_on_the_first_screen() {
    run_browser_test(
        "the_report_fits_1280_px_and_answers_on_the_first_screen",
        |exe| async move {
            // The suite fixture: every section, and the widest table (the
            // settings of seven scenarios).
            let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/suite/result.json");
            let result = RunResult::load(&fixture).context("loading the suite fixture")?;
            let dir = tempfile::tempdir().context("a temporary folder")?;
            loadgen::report::write_reports(&result, dir.path(), &Default::default())
                .context("writing the reports")?;
            let url = format!("file://{}", dir.path().join("report.html").display());
            let browser = Chromium::launch(&exe, None).await?;
            let (page, console) = browser.open(&url).await?;
            let size = eval_json(
                &page,
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth, \
                  window.innerWidth, window.innerHeight, \
                  document.querySelector('h2').textContent, \
                  document.querySelector('h2').getBoundingClientRect().top, \
                  document.querySelectorAll('div.wide table').length, \
                  document.querySelectorAll('table').length]",
            )
            .await?;
            screenshot(&page, "report-1280px").await?;
            let (scroll, client) = (size[0].as_i64(), size[1].as_i64());
            ensure!(size[2] == 1280, "the window is 1,280 px wide: {size}");
            ensure!(
                scroll.is_some() && scroll == client,
                "report.html is wider than the window at 1,280 px (scroll width, client width): {size}"
            );
            ensure!(size[4] == "Answer", "the first section: {size}");
            let top = size[5].as_f64().context("the Answer's position")?;
            let height = size[3].as_f64().context("the window's height")?;
            ensure!(top < height / 2.0, "the Answer starts below the first half screen: {size}");
            ensure!(size[6] == size[7], "every table in its scrolling box: {size}");
            console.assert_none("while showing the report")?;
            browser.close().await;
            Ok(())
        },
    )
    .await;
}
