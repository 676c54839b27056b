//! The JSON-RPC server over HTTP, speaking Bitcoin Core's dialect: HTTP basic auth with a
//! cookie or a configured user and password, requests in JSON-RPC 1.0 style (no `jsonrpc`
//! field, both `result` and `error` in the reply) or 2.0, batches, and Bitcoin Core's HTTP
//! status codes. The Prometheus metrics are served on their own listener, without auth.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::error::{ErrorCode, RpcError};
use super::methods::{self, RpcContext};
use crate::node::Node;
use quarry_rpc::{COOKIE_FILE, COOKIE_USER};

/// Largest request body taken, in bytes (a 1 MB block in hex is 2 MB).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Calls in one batch, at most.
pub const MAX_BATCH: usize = 1_000;
/// Wait before answering a failed authentication, to slow down guessing.
const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(250);

/// How long a scraper may take to send its request's headers.
const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a JSON-RPC client may take to send a request's headers, and then its body, by
/// default: Core's `-rpcservertimeout`.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// Who may call.
#[derive(Clone)]
pub struct Credentials {
    expected: [u8; 32],
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Credentials {
    /// A user and password.
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            expected: Sha256::digest(format!("{user}:{password}")).into(),
        }
    }

    /// Whether an `Authorization` header carries these credentials. Compared as hashes, so
    /// the time taken says nothing about how much of a guess was right.
    fn accept(&self, headers: &HeaderMap) -> bool {
        let Some(encoded) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(decoded).into();
        given == self.expected
    }
}

/// A cookie file written at start and removed at shutdown, as Bitcoin Core does.
#[derive(Debug)]
pub struct Cookie {
    path: PathBuf,
    /// The credentials it holds.
    pub credentials: Credentials,
}

impl Cookie {
    /// Writes a fresh random cookie to `data_dir/.cookie`, readable by the owner only.
    pub fn create(data_dir: &Path) -> std::io::Result<Self> {
        let secret: [u8; 32] = rand::random();
        let password = hex::encode(secret);
        let path = data_dir.join(COOKIE_FILE);
        let temporary = data_dir.join(".cookie.tmp");
        let _ = std::fs::remove_file(&temporary);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(
            &mut options.open(&temporary)?,
            format!("{COOKIE_USER}:{password}").as_bytes(),
        )?;
        std::fs::rename(&temporary, &path)?;
        Ok(Self {
            path,
            credentials: Credentials::new(COOKIE_USER, &password),
        })
    }
}

impl Drop for Cookie {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            warn!(path = %self.path.display(), %error, "cannot remove the cookie file");
        }
    }
}

#[derive(Clone, Debug)]
struct Shared {
    context: Arc<RpcContext>,
    credentials: Credentials,
    /// How long a request's body may take to arrive.
    timeout: Duration,
}

/// The JSON-RPC service on `listener` until `shutdown` resolves. A request's headers and its
/// body must each arrive within `timeout` (Core's `-rpcservertimeout`), else the connection
/// is closed: a client sending slowly cannot hold a connection, and its file descriptor,
/// without end.
pub async fn serve_rpc(
    listener: TcpListener,
    context: Arc<RpcContext>,
    credentials: Credentials,
    timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", post(handle))
        .route("/wallet/{name}", post(handle))
        .with_state(Shared {
            context,
            credentials,
            timeout,
        });
    serve_http(listener, app, timeout, shutdown).await
}

/// Serves `app` over HTTP/1.1 on `listener` until `shutdown` resolves, then lets the requests
/// in progress finish. Headers must arrive within `header_timeout`.
async fn serve_http(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, or a connection reset before it was taken: the
                // next accept may work.
                Err(error) => {
                    warn!(%error, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A closed or timed-out connection is the client's business.
            let _ = connection.await;
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// The Prometheus text endpoint (`GET /metrics`) on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(node);
    serve_http(listener, app, METRICS_HEADER_TIMEOUT, shutdown).await
}

/// Answers in OpenMetrics when the scraper asks for it (Prometheus does), else in the classic
/// `text/plain; version=0.0.4` format (curl, older tools), as Prometheus' own clients do.
async fn metrics(State(node): State<Arc<Node>>, headers: axum::http::HeaderMap) -> Response {
    if let Err(error) = super::gauges::refresh_metrics(&node).await {
        return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response();
    }
    let open_metrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    let (content_type, text) = if open_metrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            node.metrics().encode(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            node.metrics().encode_classic(),
        )
    };
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// How a request asked to be answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Version {
    /// JSON-RPC 1.0 as bitcoin-cli sends it: `result` and `error` both present.
    Legacy,
    /// JSON-RPC 2.0: only one of them, and a `jsonrpc` field.
    V2,
}

/// One call's reply, and whether the client wants it (2.0 notifications do not).
struct Reply {
    body: Option<Value>,
    error: Option<ErrorCode>,
    version: Version,
}

fn reply(version: Version, id: Value, outcome: Result<Value, RpcError>) -> Reply {
    let error = outcome.as_ref().err().map(|error| error.code);
    let body = match (version, outcome) {
        (Version::Legacy, Ok(result)) => json!({ "result": result, "error": null, "id": id }),
        (Version::Legacy, Err(error)) => {
            json!({ "result": null, "error": error.to_json(), "id": id })
        }
        (Version::V2, Ok(result)) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
        (Version::V2, Err(error)) => {
            json!({ "jsonrpc": "2.0", "error": error.to_json(), "id": id })
        }
    };
    Reply {
        body: Some(body),
        error,
        version,
    }
}

async fn call_one(context: &Arc<RpcContext>, request: Value) -> Reply {
    let Value::Object(mut request) = request else {
        return reply(
            Version::Legacy,
            Value::Null,
            Err(RpcError::new(
                ErrorCode::InvalidRequest,
                "Invalid Request object",
            )),
        );
    };
    let id = request.remove("id");
    let version = match request.get("jsonrpc") {
        Some(Value::String(version)) if version == "2.0" => Version::V2,
        None | Some(Value::Null) => Version::Legacy,
        Some(Value::String(version)) if version == "1.0" || version == "1.1" => Version::Legacy,
        Some(_) => {
            return reply(
                Version::Legacy,
                id.unwrap_or(Value::Null),
                Err(RpcError::new(
                    ErrorCode::InvalidRequest,
                    "JSON-RPC version not supported",
                )),
            )
        }
    };
    let outcome = match request.remove("method") {
        Some(Value::String(method)) => {
            debug!(%method, "RPC call");
            methods::call(context, &method, request.remove("params")).await
        }
        None => Err(RpcError::new(ErrorCode::InvalidRequest, "Missing method")),
        Some(_) => Err(RpcError::new(
            ErrorCode::InvalidRequest,
            "Method must be a string",
        )),
    };
    if version == Version::V2 && id.is_none() {
        // A notification: run, but not answered.
        return Reply {
            body: None,
            error: None,
            version,
        };
    }
    reply(version, id.unwrap_or(Value::Null), outcome)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{}\n", quarry_rpc::plain_json::to_text(body)),
    )
        .into_response()
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    if !shared.credentials.accept(&headers) {
        // As Core: a request without credentials is answered at once, wrong ones after a
        // pause that slows guessing.
        if headers.contains_key(header::AUTHORIZATION) {
            tokio::time::sleep(AUTH_FAILURE_DELAY).await;
        }
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"jsonrpc\"")],
        )
            .into_response();
    }
    let body = match tokio::time::timeout(
        shared.timeout,
        axum::body::to_bytes(body, MAX_REQUEST_BYTES),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(_) => {
            return (StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")]).into_response()
        }
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => {
            let error = RpcError::new(ErrorCode::ParseError, "Parse error");
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "result": null, "error": error.to_json(), "id": null }),
            );
        }
    };
    match request {
        Value::Array(calls) => {
            if calls.len() > MAX_BATCH {
                let error = RpcError::new(
                    ErrorCode::InvalidRequest,
                    format!("a batch holds at most {MAX_BATCH} calls"),
                );
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "result": null, "error": error.to_json(), "id": null }),
                );
            }
            let mut replies = Vec::with_capacity(calls.len());
            for call in calls {
                if let Some(body) = call_one(&shared.context, call).await.body {
                    replies.push(body);
                }
            }
            json_response(StatusCode::OK, &Value::Array(replies))
        }
        single => {
            let reply = call_one(&shared.context, single).await;
            let Some(body) = reply.body else {
                return StatusCode::NO_CONTENT.into_response();
            };
            // Bitcoin Core's status codes for 1.0-style errors; 2.0 replies are always 200.
            let status = match (reply.version, reply.error) {
                (Version::V2, _) | (_, None) => StatusCode::OK,
                (_, Some(ErrorCode::MethodNotFound)) => StatusCode::NOT_FOUND,
                (_, Some(ErrorCode::InvalidRequest)) => StatusCode::BAD_REQUEST,
                (_, Some(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            json_response(status, &body)
        }
    }
}

/// Binds `address`, with an error that names it.
pub async fn bind(address: SocketAddr, what: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot listen for {what} on {address}: {error}"),
        )
    })
}
