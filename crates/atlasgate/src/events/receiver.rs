//! A tiny app backend that receives atlasgate's events and checks their
//! Standard Webhooks signatures: the demo's "your app", and an example of
//! what a receiver does.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};

/// One event as received, with whether its signature verified.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub body: serde_json::Value,
    pub verified: bool,
}

#[derive(Default)]
struct Inner {
    secret: Option<SecretString>,
    got: Vec<ReceivedEvent>,
}

/// Listens on a loopback port until dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/events`
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Receiver {
    pub async fn start() -> std::io::Result<Receiver> {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let shared = inner.clone();
        let router = axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let shared = shared.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let ts: i64 = h("webhook-timestamp").parse().unwrap_or(0);
                    let mut inner = lock(&shared);
                    let verified = inner.secret.as_ref().is_some_and(|s| {
                        super::verify(
                            s.expose_secret(),
                            &h("webhook-id"),
                            ts,
                            body.as_bytes(),
                            &h("webhook-signature"),
                        )
                    });
                    let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    inner.got.push(ReceivedEvent { body, verified });
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}/events", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Receiver { url, inner, task })
    }

    /// The `whsec_…` secret signatures are checked with.
    pub fn set_secret(&self, secret: SecretString) {
        lock(&self.inner).secret = Some(secret);
    }

    pub fn received(&self) -> Vec<ReceivedEvent> {
        lock(&self.inner).got.clone()
    }
}
