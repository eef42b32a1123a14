//! A dev-only test kit for atlasgate: a small cookie-keeping browser that
//! follows the connect flow's redirects, and the parsing of atlasgate's own
//! HTML pages (the site picker) that a person would read.
//!
//! Nothing here belongs in a production broker: the tests, the benches and
//! `atlasgate demo --scripted` use it, and the `atlasgate` binary links it
//! only with its `demo` feature (the default), together with atlassim.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;

// ---- a small cookie-keeping browser ---------------------------------------------------

/// One page as a browser would end up on it.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
}

/// Follows redirects and keeps cookies (by name; everything here is loopback).
pub struct Browser {
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
    pub last: Option<Page>,
}

impl Browser {
    /// `http` must not follow redirects itself.
    pub fn new(http: reqwest::Client) -> Browser {
        Browser {
            http,
            cookies: Mutex::new(BTreeMap::new()),
            last: None,
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into(), value.into());
    }

    pub fn clear_cookies(&self) {
        self.cookies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep_cookies(&self, resp: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((name, value)) = v
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .and_then(|p| p.split_once('='))
            {
                jar.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    /// GET and follow redirects (at most 10).
    pub async fn get(&mut self, url: &str) -> anyhow::Result<Page> {
        self.navigate(self.http.get(url), url).await
    }

    /// Submit a form (`application/x-www-form-urlencoded`) and follow redirects.
    pub async fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> anyhow::Result<Page> {
        self.navigate(self.http.post(url).form(fields), url).await
    }

    /// Send one request without following its redirect.
    pub async fn send_once(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let req = match self.cookie_header() {
            Some(c) => req.header(reqwest::header::COOKIE, c),
            None => req,
        };
        let resp = req.send().await?;
        self.keep_cookies(&resp);
        Ok(resp)
    }

    async fn navigate(
        &mut self,
        first: reqwest::RequestBuilder,
        url: &str,
    ) -> anyhow::Result<Page> {
        let mut current = url::Url::parse(url)?;
        let mut resp = self.send_once(first).await?;
        for _ in 0..10 {
            if !resp.status().is_redirection() {
                break;
            }
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow::anyhow!("redirect without Location"))?;
            current = current.join(location)?;
            resp = self.send_once(self.http.get(current.clone())).await?;
        }
        let page = Page {
            status: resp.status().as_u16(),
            url: current.to_string(),
            body: resp.text().await?,
        };
        self.last = Some(page.clone());
        Ok(page)
    }
}

/// The fields of our site picker page.
#[derive(Debug, Clone)]
pub struct SitePickerForm {
    pub csrf: String,
    pub cloud_ids: Vec<String>,
}

impl SitePickerForm {
    pub fn parse(html: &str) -> anyhow::Result<SitePickerForm> {
        let csrf = regex::Regex::new(r#"name="csrf" value="([^"]+)""#)?
            .captures(html)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_string())
            .ok_or_else(|| anyhow::anyhow!("no CSRF token on the site picker"))?;
        let cloud_ids = regex::Regex::new(r#"name="cloud_id" value="([^"]+)""#)?
            .captures_iter(html)
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
            .collect();
        Ok(SitePickerForm { csrf, cloud_ids })
    }
}
