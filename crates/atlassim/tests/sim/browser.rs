//! The consent page in a real headless Chromium: pick a user and the second
//! site, Accept, and exchange the code the browser brings back.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::get;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::common::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills chromedriver (which takes its browsers with it) however the test ends.
struct Driver {
    child: Child,
    profile: std::path::PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type Recorded = Arc<Mutex<Option<HashMap<String, String>>>>;

/// A stand-in for the app's callback: records the query it is called with.
async fn spawn_callback() -> (String, Recorded) {
    let recorded: Recorded = Arc::default();
    async fn callback(
        State(rec): State<Recorded>,
        Query(q): Query<HashMap<String, String>>,
    ) -> &'static str {
        *rec.lock().unwrap() = Some(q);
        "connected"
    }
    let app = axum::Router::new()
        .route("/cb", get(callback))
        .with_state(recorded.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, recorded)
}

#[tokio::test]
async fn a_person_consents_in_a_real_browser() {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{CHROMEDRIVER} is missing and CI is set: browser tests must run in CI");
        }
        eprintln!("skipping a_person_consents_in_a_real_browser: {CHROMEDRIVER} not found");
        return;
    }
    let sim = spawn_default().await;
    let (callback_url, recorded) = spawn_callback().await;
    sim.add_redirect_uri(CLIENT_ID, &callback_url);
    let ids = cloud_ids(&sim);
    let noah = sim.snapshot()["users"][1]["account_id"]
        .as_str()
        .unwrap()
        .to_string();

    let port = free_port();
    let profile = std::env::temp_dir().join(format!("atlassim-chromium-{}", uuid::Uuid::new_v4()));
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let _driver = Driver {
        child,
        profile: profile.clone(),
    };

    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let browser = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&webdriver)
            .await
        {
            Ok(c) => break c,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not come up: {e}"),
        }
    };

    let mut params = authorize_params();
    params[3].1 = callback_url.clone();
    params[4].1 = "browser-state".into();
    browser.goto(&authorize_url(&sim, &params)).await.unwrap();
    let title = browser
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(title.contains("atlasgate-dev"), "{title}");

    browser
        .find(Locator::Id("account_id"))
        .await
        .unwrap()
        .select_by_value(&noah)
        .await
        .unwrap();
    let second_site = format!("input[name='site'][value='{}']", ids[1]);
    browser
        .find(Locator::Css(&second_site))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Id("accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let started = Instant::now();
    let query = loop {
        if let Some(q) = recorded.lock().unwrap().clone() {
            break q;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the browser never reached the callback"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let landed = browser.current_url().await.unwrap();
    browser.close().await.unwrap();

    assert!(landed.as_str().starts_with(&callback_url), "{landed}");
    assert_eq!(
        query.get("state").map(String::as_str),
        Some("browser-state")
    );
    let code = query.get("code").expect("a code in the callback");
    let mut body = code_body(code);
    body["redirect_uri"] = json!(callback_url);
    let (status, tokens) = token_json(&sim, body).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        get_json(&sim, "/me", access).await.1["account_id"],
        noah.as_str()
    );
    let (_, resources) = get_json(&sim, "/oauth/token/accessible-resources", access).await;
    let listed: Vec<&str> = resources
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        vec![ids[1].as_str()],
        "only the site picked in the browser"
    );
}
