//! The live page (`consumer status --serve`) in a real browser: headless Chromium (Debian's
//! `chromium`) loads it, the consumer's numbers are on it and change while records are
//! written, the components that are not running (cdc-reader, producer serve here) are red and
//! say so, and a consumer that is stopped turns red too, while the page goes on. A screenshot
//! is saved as `target/live-page.png`.
//!
//! The writes are Debezium records produced straight to the test's topic (the consumer tests'
//! way), so this test needs only the consumer binary. Without `chromium` it is skipped with a
//! message, except under CI (`CI` set), where it fails.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use projections::synthetic::{debezium_records, random_history, Record};
use serde_json::Value;

use db::testing::Killed;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The page's DOM after its scripts ran for a few (virtual) seconds; with `screenshot`, also
/// a PNG of it.
fn load_page(browser: &str, url: &str, screenshot: Option<&str>) -> String {
    let profile = std::env::temp_dir().join(format!("pgcdc-live-page-{}", std::process::id()));
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,720",
        "--virtual-time-budget=4000",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(path) => command.arg(format!("--screenshot={path}")),
        None => command.arg("--dump-dom"),
    };
    let output = command.arg(url).output().expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text of the line of box `stage` that starts with `label`, e.g. `applied: 1,234`.
fn line<'a>(dom: &'a str, stage: &str, label: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"box-{stage}\""))?;
    let rest = &dom[start..];
    let end = rest.find("</g>").unwrap_or(rest.len());
    let at = rest[..end].find(&format!(">{label}"))?;
    let text = &rest[at + 1..end];
    Some(&text[..text.find('<')?])
}

fn is_up(dom: &str, stage: &str) -> Option<bool> {
    let start = dom.find(&format!("id=\"box-{stage}\""))?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    Some(tag.contains("data-up=\"true\""))
}

async fn state(page: &str) -> Option<Value> {
    let body = db::metrics::http_get(page, "/api/state", Duration::from_secs(3))
        .await
        .ok()?;
    serde_json::from_str(&body).ok()
}

async fn wait_for_records(page: &str, records: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = state(page).await {
            if s["consumer"]["records"].as_f64() == Some(records as f64) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the page did not show {records} records within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_numbers_moving_and_a_stopped_consumer_as_down() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing: CI must install it (.ci/run: apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED: the live page's browser test needs `chromium` (apt-get install -y chromium)"
        );
        return;
    };
    let (url, _pool) = db::testing::fresh_database("consumer_live_page")
        .await
        .expect("database");
    let topic = unique_topic("live_page");
    create_topic(&topic, 1).await;
    let (events, _) = random_history(11, 50, 600, 30).finish();
    let records: Vec<Record> = events
        .iter()
        .flat_map(|e| debezium_records(e, true))
        .collect();
    let (first, second) = records.split_at(records.len() / 2);
    produce(&topic, first).await;

    let port = || format!("127.0.0.1:{}", db::metrics::free_local_port().unwrap());
    let (metrics, page, nobody) = (port(), port(), port());
    let common_flags = [
        "--database-url".to_string(),
        url.clone(),
        "--kafka-bootstrap-servers".to_string(),
        bootstrap_servers(),
        "--topics".to_string(),
        topic.clone(),
        "--group-id".to_string(),
        format!("group-{topic}"),
    ];
    let consumer = Killed(
        Command::new(env!("CARGO_BIN_EXE_consumer"))
            .args(&common_flags)
            .args(["--batch-timeout", "50ms", "--metrics-listen", &metrics])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the consumer"),
    );
    let _page = Killed(
        Command::new(env!("CARGO_BIN_EXE_consumer"))
            .args(&common_flags)
            .args(["status", "--serve", &page, "--consumer-metrics", &metrics])
            .args(["--reader-metrics", &nobody, "--producer-metrics", &nobody])
            .args(["--slot-name", "live_page_no_such_slot"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the live page"),
    );
    wait_for_records(&page, first.len()).await;
    let page_url = format!("http://{page}/");

    let dom = load_page(browser, &page_url, None);
    assert_eq!(is_up(&dom, "consumer"), Some(true), "{dom}");
    let applied_before = line(&dom, "consumer", "applied: ")
        .expect("applied on the page")
        .to_string();
    assert!(line(&dom, "consumer", "e2e p99: ").is_some(), "{dom}");
    let partition = format!("{}/0 end ", topic.rsplit('.').next().unwrap_or_default());
    assert!(
        line(&dom, "topics", &partition).is_some_and(|l| l.contains(" lag 0")),
        "{dom}"
    );
    assert_eq!(
        is_up(&dom, "reader"),
        Some(false),
        "cdc-reader is not running: red"
    );
    assert!(line(&dom, "reader", "DOWN: ").is_some(), "{dom}");
    assert_eq!(is_up(&dom, "postgres"), Some(true));
    assert_eq!(is_up(&dom, "slot"), Some(false), "no such slot: red");

    produce(&topic, second).await;
    wait_for_records(&page, records.len()).await;
    let dom = load_page(browser, &page_url, None);
    let applied_after = line(&dom, "consumer", "applied: ").expect("applied on the page");
    assert_ne!(applied_before, applied_after, "the numbers move");
    let screenshot = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/live-page.png");
    load_page(browser, &page_url, Some(screenshot));
    assert!(
        std::fs::metadata(screenshot).is_ok_and(|m| m.len() > 1000),
        "screenshot saved"
    );

    drop(consumer);
    let dom = load_page(browser, &page_url, None);
    assert_eq!(
        is_up(&dom, "consumer"),
        Some(false),
        "a stopped consumer is red: {dom}"
    );
    assert!(line(&dom, "consumer", "DOWN: consumer").is_some());
    assert_eq!(
        is_up(&dom, "postgres"),
        Some(true),
        "the rest of the page goes on"
    );
}
