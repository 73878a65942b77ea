//! The metrics endpoint (`metrics: ADDRESS port = N`): HTTP/1.1 with hyper, on the
//! server's tokio runtime, reading the metrics registry and the sessions registry (never
//! the relays).
//!
//! Routes: `GET /metrics` (text format 0.0.4, OpenMetrics when `Accept` asks),
//! `GET /status.json` (the registry, [`crate::status_json`]), `GET /log.json` (the most
//! recent log lines), `GET /` (the dashboard, embedded), `POST /sessions/CID/kill` (only
//! with `metrics.control: on`, and the management password in `X-Ferrosocks-Password`);
//! other paths 404, other methods 405.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections (more are closed at once), headers
//! within [`MAX_HEADER_BYTES`] and [`MAX_HEADERS`] (hyper answers 431 or closes),
//! request headers read within [`HEADER_TIMEOUT`], a connection's life within
//! [`CONNECTION_LIFE`]; no request body is read. Each response is built from values
//! read without waiting on any relay.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use logsys::{Level, Subsystem};
use server::control::{Control, Controller, Outcome, Selector};
use server::Server;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::metrics_text::{to_prometheus_text, wants_openmetrics, OPENMETRICS, TEXT_004};

/// Connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest request head (request line and headers) read.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 32;
/// Time to read a request's head (also a kept-alive connection's idle limit).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection lives.
pub const CONNECTION_LIFE: Duration = Duration::from_secs(60);
/// Log lines `GET /log.json` returns.
const LOG_LINES: usize = 50;

/// The embedded dashboard (no asset is fetched from anywhere).
const DASHBOARD: &str = include_str!("dashboard.html");

/// What the endpoint serves from.
pub struct Context {
    server: Server,
    controller: Controller,
    /// The management password, when `metrics.control: on` and one is configured.
    control_password: Option<String>,
}

impl Context {
    /// The context; `control_password` is `Some` only when the dashboard may cut
    /// sessions (`metrics.control: on` with `management.password`).
    pub fn new(
        server: Server,
        controller: Controller,
        control_password: Option<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            server,
            controller,
            control_password,
        })
    }
}

/// Serves `listener` until `stop` is cancelled.
pub async fn serve(listener: std::net::TcpListener, ctx: Arc<Context>, stop: CancellationToken) {
    let _ = listener.set_nonblocking(true);
    let logger = ctx.server.logger().clone();
    let listener = match (listener.local_addr(), TcpListener::from_std(listener)) {
        (Ok(addr), Ok(l)) => {
            logger.at(
                Subsystem::MGMT,
                Level::Notice,
                format!("metrics: listening on http://{addr}/"),
            );
            l
        }
        (_, Err(e)) | (Err(e), _) => {
            logger.error(format!("metrics: cannot serve: {e}"));
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(_) => {
                    // Out of descriptors, most likely: the SOCKS side matters more.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let ctx = Arc::clone(&ctx);
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .max_headers(MAX_HEADERS);
            let service = hyper::service::service_fn(move |req| {
                let ctx = Arc::clone(&ctx);
                async move { Ok::<_, Infallible>(handle(&ctx, &req).await) }
            });
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = &mut conn => {}
                () = tokio::time::sleep(CONNECTION_LIFE) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

fn respond(
    status: StatusCode,
    kind: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

/// The method a route allows, for 405's `Allow`.
fn route_method(path: &str) -> Option<Method> {
    match path {
        "/" | "/metrics" | "/status.json" | "/log.json" => Some(Method::GET),
        p if kill_target(p).is_some() => Some(Method::POST),
        _ => None,
    }
}

/// `/sessions/CID/kill` → CID.
fn kill_target(path: &str) -> Option<u64> {
    path.strip_prefix("/sessions/")?
        .strip_suffix("/kill")?
        .parse()
        .ok()
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(ctx: &Context, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let Some(allowed) = route_method(path) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let method = req.method();
    let ok = method == allowed || (allowed == Method::GET && method == Method::HEAD);
    if !ok {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        let allow = if allowed == Method::GET {
            "GET, HEAD"
        } else {
            "POST"
        };
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        return r;
    }
    let registry = ctx.server.registry();
    match path {
        "/metrics" => {
            let om = server::metrics::encode();
            let accept = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            if wants_openmetrics(accept) {
                respond(StatusCode::OK, OPENMETRICS, om)
            } else {
                respond(StatusCode::OK, TEXT_004, to_prometheus_text(&om))
            }
        }
        "/status.json" => {
            let body = crate::status_json::render(
                &registry.snapshot(),
                &registry.totals(),
                SystemTime::now(),
            );
            let mut r = respond(StatusCode::OK, "application/json", body);
            if ctx.control_password.is_some() {
                r.headers_mut()
                    .insert("x-ferrosocks-control", HeaderValue::from_static("on"));
            }
            r
        }
        "/log.json" => {
            let mut history = ctx.server.logger().history(u32::MAX, Level::Info);
            let from = history.len().saturating_sub(LOG_LINES);
            let body = crate::status_json::render_log(&history.split_off(from));
            respond(StatusCode::OK, "application/json", body)
        }
        "/" => respond(StatusCode::OK, "text/html; charset=utf-8", DASHBOARD),
        p => {
            let id = kill_target(p).unwrap_or(u64::MAX);
            let Some(want) = &ctx.control_password else {
                return text(
                    StatusCode::FORBIDDEN,
                    "sessions are cut from here only with metrics.control: on and management.password\n",
                );
            };
            let given = req
                .headers()
                .get("x-ferrosocks-password")
                .map_or(&b""[..], HeaderValue::as_bytes);
            if !same_secret(given, want.as_bytes()) {
                ctx.server.logger().at(
                    Subsystem::MGMT,
                    Level::Warning,
                    "metrics: a kill from the dashboard gave a wrong password",
                );
                return text(StatusCode::UNAUTHORIZED, "wrong password\n");
            }
            match ctx
                .controller
                .request(Control::Kill(Selector::Id(id)))
                .await
            {
                Outcome::Killed(n) if n > 0 => text(StatusCode::OK, "killed\n"),
                Outcome::Killed(_) => text(StatusCode::NOT_FOUND, "no such session\n"),
                Outcome::Done | Outcome::Stopping => {
                    text(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping\n")
                }
            }
        }
    }
}

/// Binds the endpoint's listener (before privileges are dropped).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    sock.set_cloexec(true)?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_kill_paths() {
        assert_eq!(route_method("/metrics"), Some(Method::GET));
        assert_eq!(route_method("/sessions/12/kill"), Some(Method::POST));
        assert_eq!(route_method("/sessions/x/kill"), None);
        assert_eq!(route_method("/nope"), None);
        assert_eq!(kill_target("/sessions/7/kill"), Some(7));
        assert!(same_secret(b"abc", b"abc") && !same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
