//! Baseline for `scripts/bench-pixel.sh`: the smallest hyper server that answers
//! every request like pixeltrack's `GET /p.gif` (the same 43-byte GIF and headers),
//! records nothing, keeps connections alive and sets TCP_NODELAY.
//!
//! Usage: `bare_pixel [ADDR]` (default 127.0.0.1:18081).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, EXPIRES, PRAGMA};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use pixeltrack::collect::image::GIF;
use tokio::net::TcpListener;

/// The GIF as a one-frame body (hyper itself ships no ready-made body type).
struct Gif(Option<Bytes>);

impl Body for Gif {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

async fn pixel(_: Request<Incoming>) -> Result<Response<Gif>, Infallible> {
    let mut res = Response::new(Gif(Some(Bytes::from_static(&GIF))));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate, private"),
    );
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(EXPIRES, HeaderValue::from_static("0"));
    Ok(res)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("bare_pixel listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(pixel));
            let _ = conn.await;
        });
    }
}
