//! The images a pixel answers with, and the headers that keep every load uncached.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// The standard 43-byte transparent 1×1 GIF89a.
pub const GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// A transparent 1×1 PNG (RGBA, one stored zlib block), built once with its CRCs.
pub fn png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        // 1×1, bit depth 8, colour type 6 (RGBA), deflate, no filter, no interlace.
        chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
        let raw = [0u8, 0, 0, 0, 0]; // filter byte + one transparent pixel
        let mut z = vec![0x78, 0x01, 0x01, 0x05, 0x00, 0xfa, 0xff];
        z.extend_from_slice(&raw);
        z.extend_from_slice(&adler32(&raw).to_be_bytes());
        chunk(&mut out, b"IDAT", &z);
        chunk(&mut out, b"IEND", &[]);
        out
    })
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for d in data {
        a = (a + u32::from(*d)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gif,
    Png,
}

/// The pixel response's header values, made when compiled (`from_static` at run time
/// checks every byte of each at every hit).
const GIF_TYPE: HeaderValue = HeaderValue::from_static("image/gif");
const PNG_TYPE: HeaderValue = HeaderValue::from_static("image/png");
const NO_STORE: HeaderValue =
    HeaderValue::from_static("no-store, no-cache, must-revalidate, private");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const EXPIRED: HeaderValue = HeaderValue::from_static("0");
/// `GIF.len()`, written out: a length made at run time is an allocation a hit.
const GIF_LENGTH: HeaderValue = HeaderValue::from_static("43");

/// The PNG's length, made once (a clone shares it).
fn png_length() -> HeaderValue {
    static LENGTH: OnceLock<HeaderValue> = OnceLock::new();
    LENGTH
        .get_or_init(|| HeaderValue::from(png().len()))
        .clone()
}
const PIXEL_REASON: header::HeaderName = header::HeaderName::from_static("x-pixel-reason");

/// The pixel response. `reason` becomes `X-Pixel-Reason` when the hit was not stored.
pub fn respond(kind: Kind, reason: Option<&'static str>, body: bool) -> Response {
    let (ctype, bytes, length): (HeaderValue, &'static [u8], HeaderValue) = match kind {
        Kind::Gif => (GIF_TYPE, &GIF, GIF_LENGTH),
        Kind::Png => (PNG_TYPE, png(), png_length()),
    };
    let mut res = Response::new(if body {
        axum::body::Body::from(bytes)
    } else {
        axum::body::Body::empty()
    });
    let h = res.headers_mut();
    h.reserve(6);
    h.insert(header::CONTENT_TYPE, ctype);
    h.insert(header::CONTENT_LENGTH, length);
    h.insert(header::CACHE_CONTROL, NO_STORE);
    h.insert(header::PRAGMA, NO_CACHE);
    h.insert(header::EXPIRES, EXPIRED);
    if let Some(r) = reason {
        h.insert(PIXEL_REASON, HeaderValue::from_static(r));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gif_is_the_standard_43_bytes() {
        assert_eq!(GIF.len(), 43);
        assert_eq!(GIF_LENGTH, GIF.len().to_string().as_str());
        assert_eq!(&GIF[..6], b"GIF89a");
        assert_eq!(GIF[42], 0x3b);
    }

    #[test]
    fn png_decodes_to_one_transparent_pixel() {
        let decoder = png::Decoder::new(png());
        let mut reader = decoder.read_info().expect("valid PNG header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("valid PNG data");
        assert_eq!((info.width, info.height), (1, 1));
        assert_eq!(&buf[..4], &[0, 0, 0, 0]);
    }

    #[test]
    fn crc_matches_the_png_spec_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }
}
