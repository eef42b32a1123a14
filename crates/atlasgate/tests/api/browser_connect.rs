//! The connect flow in a real headless Chromium: consent clicked on
//! atlassim's page, the site picked in ours.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::connect::{new_session, sim_sites};
use crate::helpers::TestApp;

struct Driver {
    child: std::process::Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> Option<Driver> {
    if !std::path::Path::new("/usr/bin/chromedriver").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("/usr/bin/chromedriver is missing, and CI requires the browser tests");
        }
        eprintln!("skipping browser test: /usr/bin/chromedriver is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(Driver {
                child,
                port,
                profile: tempfile::tempdir().unwrap(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromedriver did not start");
}

async fn chromium(driver: &Driver) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", driver.profile.path().display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_in_chromium_and_picks_the_second_site() {
    let Some(driver) = chromedriver().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("browser").await;
    let sites = sim_sites(&app);
    let session = new_session(&app, &key, json!({ "owner": "person:1" })).await;
    let c = chromium(&driver).await;
    let result = async {
        c.goto(session["connect_url"].as_str().unwrap()).await?;
        // atlassim's consent page: give access to both sites, accept.
        c.wait().for_element(Locator::Id("accept")).await?;
        for site in c.find_all(Locator::Css("input[name=site]")).await? {
            if !site.is_selected().await? {
                site.click().await?;
            }
        }
        c.find(Locator::Id("accept")).await?.click().await?;
        // Our site picker.
        c.wait().for_element(Locator::Id("continue")).await?;
        let url = c.current_url().await?;
        assert!(url.as_str().ends_with("/site"), "{url}");
        let text = c.find(Locator::Css("main")).await?.text().await?;
        assert!(text.contains("Choose a site"), "{text}");
        c.find(Locator::Id("site-1")).await?.click().await?;
        c.find(Locator::Id("continue")).await?.click().await?;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='Connected']"))
            .await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    result.unwrap();
    let list: Value = app
        .get("/v1/connections?owner=person:1", Some(&key))
        .await
        .json()
        .await
        .unwrap();
    let conn = &list["items"][0];
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["site"]["cloud_id"], sites[1].as_str());
}
