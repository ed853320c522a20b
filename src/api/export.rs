//! `/api/v1/export`: a site's raw events for a date range, streamed as NDJSON or CSV
//! while they are read, so memory stays flat whatever the range.

use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::on;
use serde_json::{json, Value};

use super::params::Params;
use super::{ApiError, ApiRoute, ApiState, Auth, Op};
use crate::report;
use crate::store::Scope;

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/export",
    summary: "Raw events of a site, streamed (?site=&from=&to=&format=ndjson|csv)",
    methods: &[Op::get(Scope::Read, |m| on(m, export))
        .returns(|| json!({"type": "string", "description": "one JSON object per line (ndjson), or CSV with a header row"}))
        .media("application/x-ndjson")],
    parameters: Some(parameters),
}];

/// The query parameters, for the OpenAPI document.
fn parameters() -> Value {
    let [from, to] = super::openapi::date_params();
    json!([
        super::openapi::site_param(),
        from,
        to,
        {"name": "format", "in": "query", "required": false, "schema": {"type": "string", "enum": ["ndjson", "csv"]}}
    ])
}

/// Exports running at once; one more is answered 429. Each holds a blocking thread
/// and a database connection while it streams.
const EXPORTS_AT_ONCE: usize = 4;
static EXPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(EXPORTS_AT_ONCE);

/// A client that accepts no bytes for this long loses its export: a reader that never
/// reads must not hold a thread and a connection forever.
const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A `Write` that hands its bytes to an async response body, chunk by chunk; it
/// waits when the client reads slowly (bounded channel), and fails when it is gone
/// or has taken nothing for [`STALL_LIMIT`].
struct ChannelWriter(
    tokio::sync::mpsc::Sender<bytes::Bytes>,
    tokio::runtime::Handle,
);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let chunk = bytes::Bytes::copy_from_slice(buf);
        self.1
            .block_on(self.0.send_timeout(chunk, STALL_LIMIT))
            .map_err(|e| match e {
                tokio::sync::mpsc::error::SendTimeoutError::Timeout(_) => std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client read nothing for 30 s",
                ),
                tokio::sync::mpsc::error::SendTimeoutError::Closed(_) => {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone")
                }
            })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /api/v1/export`: raw events, streamed as they are read (NDJSON or CSV).
async fn export(
    State(state): State<ApiState>,
    auth: Auth,
    parts: Parts,
) -> Result<Response, ApiError> {
    let p = Params::parse(&parts, &["site", "from", "to", "format"])?;
    let site = auth.site(&state, p.get("site")).await?;
    let range = p.range(state.clock.now_ms())?;
    let (format, content_type) = match p.get("format").unwrap_or("ndjson") {
        "ndjson" => (report::export::Format::Ndjson, "application/x-ndjson"),
        "csv" => (report::export::Format::Csv, "text/csv; charset=utf-8"),
        _ => {
            return Err(ApiError::BadRequest(
                "'format' must be ndjson or csv".into(),
            ))
        }
    };
    let Ok(permit) = EXPORTS.try_acquire() else {
        return Err(ApiError::TooMany(format!(
            "{EXPORTS_AT_ONCE} exports are running; try again when one has finished"
        )));
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let store = state.store.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let (a, b) = range.millis();
        let mut out = ChannelWriter(tx, handle);
        if let Err(e) = report::export::write(store.as_ref(), &site, a, b, format, &mut out) {
            match e.kind() {
                std::io::ErrorKind::BrokenPipe => {}
                std::io::ErrorKind::TimedOut => {
                    tracing::warn!("export abandoned: its client stopped reading")
                }
                _ => tracing::error!(error = %e, "export failed midway"),
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
