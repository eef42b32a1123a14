//! The connect flow in a real headless Chromium: consent clicked on
//! atlassim's page, the site picked in ours.

use fantoccini::Locator;
use serde_json::json;

use crate::connect::{new_session, sim_sites};
use crate::helpers::{chromedriver, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_in_chromium_and_picks_the_second_site() {
    let Some(driver) = chromedriver().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let (_, key) = app.create_app("browser").await;
    let sites = sim_sites(&app);
    let session = new_session(&app, &key, json!({ "owner": "person:1" })).await;
    let c = driver.browser().await;
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
    let list = app.get_json("/v1/connections?owner=person:1", &key).await;
    let conn = &list["items"][0];
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["site"]["cloud_id"], sites[1].as_str());
}
