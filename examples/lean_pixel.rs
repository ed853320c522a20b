//! A measurement, not a server to run: the pixel answered over HTTP/1.1 keep-alive by
//! a parser of its own (httparse, the one hyper uses) on tokio, with the same headers as
//! `bare_pixel` (a fixed `date`: hyper's is formatted once a second), to show what hyper's connection machinery costs a hit
//! (`docs/benchmarks.md`). Pipelined requests are answered in order; anything but a
//! complete request head closes the connection.
//!
//! `cargo run --release --example lean_pixel -- 127.0.0.1:18082`

use pixeltrack::collect::image::GIF;
use tokio::net::TcpListener;

fn response() -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: image/gif\r\n\
         cache-control: no-store, no-cache, must-revalidate, private\r\n\
         pragma: no-cache\r\nexpires: 0\r\ncontent-length: {}\r\n\
         date: Sun, 06 Dec 2026 19:40:00 GMT\r\n\r\n",
        GIF.len()
    )
    .into_bytes();
    r.extend_from_slice(&GIF);
    r
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18082".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("lean_pixel listening on {}", listener.local_addr()?);
    let res: &'static [u8] = Box::leak(response().into_boxed_slice());
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut out = Vec::with_capacity(4 * 1024);
            let (mut start, mut end) = (0, 0);
            loop {
                if end == buf.len() {
                    if start == 0 {
                        return; // a head larger than the buffer
                    }
                    buf.copy_within(start..end, 0);
                    (start, end) = (0, end - start);
                }
                if stream.readable().await.is_err() {
                    return;
                }
                match stream.try_read(&mut buf[end..]) {
                    Ok(0) => return,
                    Ok(n) => end += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return,
                }
                loop {
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let mut req = httparse::Request::new(&mut headers);
                    match req.parse(&buf[start..end]) {
                        Ok(httparse::Status::Complete(len)) => {
                            std::hint::black_box((req.path, req.headers.len()));
                            out.extend_from_slice(res);
                            start += len;
                        }
                        Ok(httparse::Status::Partial) => break,
                        Err(_) => return,
                    }
                }
                if start == end {
                    (start, end) = (0, 0);
                }
                let mut sent = 0;
                while sent < out.len() {
                    if stream.writable().await.is_err() {
                        return;
                    }
                    match stream.try_write(&out[sent..]) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                }
                out.clear();
            }
        });
    }
}
