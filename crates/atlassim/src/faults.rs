//! Fault injection (`POST /__sim/faults`): canned statuses, latency, and lost
//! answers, on every route outside `/__sim/`.
//!
//! A "drop" must look to the client exactly like a network failure after the
//! server acted (the lost refresh answer atlasgate has to survive). So the
//! handler runs, then the connection is cut before one byte of the answer is
//! written: every accepted socket is wrapped in [`KillableStream`], whose
//! kill switch travels to the request as connect info.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::model::AppState;

fn one() -> u32 {
    1
}

/// One armed fault: the body of `POST /__sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// HTTP method to match (any when absent), case-insensitive.
    #[serde(default)]
    pub method: Option<String>,
    /// Path glob: `*` matches one segment, `**` any number (also none).
    pub path: String,
    /// How many matching requests it hits before it is used up.
    #[serde(default = "one")]
    pub count: u32,
    /// Answer this status instead of calling the handler.
    #[serde(default)]
    pub status: Option<u16>,
    /// Body of that answer: JSON, or a string sent as text.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Sleep this long first.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Handle the request but cut the connection before answering.
    #[serde(default)]
    pub drop: bool,
}

impl Fault {
    /// Matches `count` `method` requests to `path` and does nothing to them
    /// yet: set `status`, `latency_ms`, `drop`, … on the value.
    pub fn new(method: &str, path: &str, count: u32) -> Fault {
        Fault {
            method: Some(method.into()),
            path: path.into(),
            count,
            status: None,
            body: None,
            headers: None,
            latency_ms: None,
            drop: false,
        }
    }
}

struct Armed {
    fault: Fault,
    remaining: u32,
}

/// The armed faults of one simulator.
#[derive(Default)]
pub struct FaultSet {
    armed: Mutex<Vec<Armed>>,
}

impl std::fmt::Debug for FaultSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultSet")
            .field("armed", &self.lock().len())
            .finish()
    }
}

impl FaultSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Armed>> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, fault: Fault) {
        if fault.count > 0 {
            let remaining = fault.count;
            self.lock().push(Armed { fault, remaining });
        }
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Faults still armed, with their remaining counts.
    pub fn list(&self) -> Vec<Fault> {
        self.lock()
            .iter()
            .map(|a| Fault {
                count: a.remaining,
                ..a.fault.clone()
            })
            .collect()
    }

    /// Take one hit of the first fault matching this request, if any.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut armed = self.lock();
        let index = armed.iter().position(|a| {
            a.fault
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && glob_match(&a.fault.path, path)
        })?;
        let hit = &mut armed[index];
        hit.remaining -= 1;
        let fault = hit.fault.clone();
        if hit.remaining == 0 {
            armed.remove(index);
        }
        Some(fault)
    }
}

/// Match `path` against a glob where `*` is one segment and `**` any number.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match_segments(&pattern, &path)
}

fn match_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_segments(rest, &path[skip..])),
        Some((seg, rest)) => match path.split_first() {
            Some((p, path_rest)) => (*seg == "*" || seg == p) && match_segments(rest, path_rest),
            None => false,
        },
    }
}

/// The middleware: applies armed faults. (`--latency-ms` lives in the gateway.)
pub async fn apply_faults(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/__sim/") {
        return next.run(req).await;
    }
    let Some(fault) = state.faults.take(req.method().as_str(), &path) else {
        return next.run(req).await;
    };
    if let Some(ms) = fault.latency_ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(status) = fault.status {
        return canned_response(status, &fault);
    }
    if fault.drop {
        let kill = req
            .extensions()
            .get::<ConnectInfo<ConnHandle>>()
            .map(|c| c.0.kill.clone());
        let response = next.run(req).await;
        return match kill {
            Some(kill) => {
                kill.store(true, Ordering::SeqCst);
                response
            }
            // Served without our listener (e.g. `Router::oneshot`): fail the
            // body instead, which also reaches the client as an error.
            None => failing_body_response(),
        };
    }
    next.run(req).await
}

fn canned_response(status: u16, fault: &Fault) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &fault.body {
        Some(serde_json::Value::String(text)) => (status, text.clone()).into_response(),
        Some(json) => (status, axum::Json(json.clone())).into_response(),
        None => status.into_response(),
    };
    for (name, value) in fault.headers.iter().flatten() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn failing_body_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "fault: dropped",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// Connect info of one accepted connection: who, and its kill switch.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    pub remote: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SimListener>>
    for ConnHandle
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be cut from inside a request.
pub struct SimListener {
    inner: TcpListener,
}

impl SimListener {
    pub fn new(inner: TcpListener) -> Self {
        SimListener { inner }
    }
}

impl axum::serve::Listener for SimListener {
    type Io = KillableStream;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let kill = Arc::new(AtomicBool::new(false));
                    return (
                        KillableStream {
                            inner: stream,
                            kill: kill.clone(),
                        },
                        ConnHandle { remote, kill },
                    );
                }
                // Out of file descriptors and the like: back off, keep serving.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnHandle {
            remote: self.inner.local_addr()?,
            kill: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// A TCP stream that refuses every write once killed, so hyper gives up on
/// the connection without sending a byte of the pending answer.
pub struct KillableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl KillableStream {
    fn killed(&self) -> bool {
        self.kill.load(Ordering::SeqCst)
    }
}

fn killed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection dropped by fault injection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn single_star_is_one_segment() {
        assert!(glob_match(
            "/ex/jira/*/rest/api/3/myself",
            "/ex/jira/abc/rest/api/3/myself"
        ));
        assert!(!glob_match(
            "/ex/jira/*/rest/api/3/myself",
            "/ex/jira/a/b/rest/api/3/myself"
        ));
        assert!(!glob_match("/oauth/*", "/oauth/token/accessible-resources"));
        assert!(glob_match("/oauth/*", "/oauth/token"));
    }

    #[test]
    fn double_star_is_any_number_of_segments() {
        assert!(glob_match("/ex/**", "/ex"));
        assert!(glob_match("/ex/**", "/ex/jira/x/rest/api/3/issue/ACME-1"));
        assert!(glob_match(
            "/ex/**/issue/*",
            "/ex/jira/x/rest/api/3/issue/ACME-1"
        ));
        assert!(!glob_match("/ex/**/issue/*", "/ex/jira/x/rest/api/3/issue"));
        assert!(glob_match("/**", "/me"));
        assert!(!glob_match("/me", "/me/too"));
    }
}
