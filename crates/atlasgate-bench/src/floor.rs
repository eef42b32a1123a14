//! The pass-through floor of `atlasgate-bench proxy`: the least a reverse
//! proxy can do — accept, swap in a fixed `Authorization`, forward to
//! atlassim over a pooled connection, stream the answer back — on hyper,
//! the same HTTP stack atlasgate serves with. It checks nothing. atlasgate's
//! proxy is measured against it (`proxy keeps N% of the pass-through floor`).

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, HOST};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Start the floor on a free loopback port: requests to
/// `http://ADDR/{path}` go to `{upstream}/{path}` with `Authorization:
/// Bearer {token}`. Answers its address.
pub async fn start(upstream: &str, token: &str) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let upstream: Uri = upstream.trim_end_matches('/').parse()?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))?;
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (client, upstream, auth) = (client.clone(), upstream.clone(), auth.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    let (client, upstream, auth) = (client.clone(), upstream.clone(), auth.clone());
                    async move {
                        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                        let uri: Uri = format!("{upstream}{path}").parse().unwrap_or_default();
                        *req.uri_mut() = uri;
                        req.headers_mut().remove(HOST);
                        req.headers_mut().insert(AUTHORIZATION, auth);
                        let resp = match client.request(req).await {
                            Ok(r) => r.map(http_body_util::Either::Left),
                            Err(_) => {
                                let mut r = Response::new(http_body_util::Either::Right(
                                    http_body_util::Empty::new(),
                                ));
                                *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                                r
                            }
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
