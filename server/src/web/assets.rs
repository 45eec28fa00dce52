//! The built site's files (the wasm, JavaScript and CSS under `pkg/`, the icons, the
//! manifest), read into memory when the router is built and served from there, each
//! with a strong `ETag` and, for text, compressed once with brotli or gzip on first
//! demand and kept.
//!
//! Measured with 32 clients on kept-alive connections, the same files through
//! `leptos_axum`'s file handler (a `ServeDir` built per request: a path check, an open,
//! a stat and a read on the blocking pool, then compression per response) did 30 % of
//! `/healthz`'s requests per second; from memory they cost about what `/healthz` does.
//! Files are few and small (about 2 MB with the debug wasm). They are looked up in the
//! router's fallback, ahead of that handler, so no route is ever shadowed by a file;
//! what is not loaded here (other extensions, past the caps) still goes to it.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Extensions of the files served from memory.
const EXTENSIONS: &[&str] = &[
    "js",
    "mjs",
    "css",
    "wasm",
    "svg",
    "png",
    "ico",
    "webmanifest",
    "json",
    "txt",
    "woff2",
];
/// Largest file read into memory.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes read into memory in all.
const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Directory levels below the site root that are walked (`pkg/<hash>/file` is two).
const MAX_DEPTH: usize = 2;
/// Smaller files are sent as they are.
const MIN_COMPRESSED_BYTES: usize = 1024;

/// One file, and its compressed forms once made.
pub struct Asset {
    bytes: Bytes,
    content_type: HeaderValue,
    etag: HeaderValue,
    compressible: bool,
    brotli: OnceCell<Option<Bytes>>,
    gzip: OnceCell<Option<Bytes>>,
}

/// The site's files by URL path.
pub fn load(site_root: &Path) -> HashMap<String, Arc<Asset>> {
    let mut assets = HashMap::new();
    let mut total = 0;
    walk(site_root, "", 0, &mut total, &mut assets);
    assets
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    total: &mut u64,
    assets: &mut HashMap<String, Arc<Asset>>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        // Hidden files, and names the router would read as parameters, stay on disk.
        if name.starts_with('.') || name.contains(['{', '}', '*', ':']) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let url_path = format!("{prefix}/{name}");
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, &url_path, depth + 1, total, assets);
            }
            continue;
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !EXTENSIONS.contains(&extension)
            || meta.len() > MAX_FILE_BYTES
            || *total + meta.len() > MAX_TOTAL_BYTES
        {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        *total += bytes.len() as u64;
        let mime = mime_guess::from_ext(extension).first_or_octet_stream();
        let compressible = matches!(mime.type_(), mime_guess::mime::TEXT)
            || matches!(
                extension,
                "js" | "mjs" | "wasm" | "svg" | "json" | "webmanifest"
            );
        let content_type = match mime.type_() {
            mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
            _ if extension == "js" || extension == "mjs" => {
                "text/javascript; charset=utf-8".to_string()
            }
            _ => mime.to_string(),
        };
        let digest = Sha256::digest(&bytes);
        let etag = format!("\"{}\"", hex(&digest[..12]));
        let (Ok(content_type), Ok(etag)) = (
            HeaderValue::from_str(&content_type),
            HeaderValue::from_str(&etag),
        ) else {
            continue;
        };
        assets.insert(
            url_path,
            Arc::new(Asset {
                compressible: compressible && bytes.len() >= MIN_COMPRESSED_BYTES,
                bytes: bytes.into(),
                content_type,
                etag,
                brotli: OnceCell::new(),
                gzip: OnceCell::new(),
            }),
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Answers a `GET` or `HEAD` of `asset`: 304 when the client has it, else the bytes, in
/// the best encoding the client accepts.
pub async fn serve(asset: Arc<Asset>, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == asset.etag || tag.trim() == "*")
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (body, encoding) = encoded(&asset, headers).await;
        let mut response = Response::new(Body::from(body));
        if let Some(encoding) = encoding {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, asset.content_type.clone());
        response
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, asset.etag.clone());
    if asset.compressible {
        out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// The body in the encoding to send, and that encoding's name (`None`: as it is).
async fn encoded(asset: &Asset, headers: &HeaderMap) -> (Bytes, Option<&'static str>) {
    if !asset.compressible {
        return (asset.bytes.clone(), None);
    }
    let accepted = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next()?.trim();
            // `q=0` means "not this one".
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    == Some(0.0)
            });
            (!refused).then_some(name)
        })
        .collect::<Vec<_>>();
    for (name, cell) in [("br", &asset.brotli), ("gzip", &asset.gzip)] {
        if !accepted.contains(&name) {
            continue;
        }
        let bytes = asset.bytes.clone();
        let compressed = cell
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || compress(name, &bytes))
                    .await
                    .ok()
                    .flatten()
            })
            .await;
        if let Some(compressed) = compressed {
            return (compressed.clone(), Some(name));
        }
    }
    (asset.bytes.clone(), None)
}

/// `bytes` compressed with `name` (`br` or `gzip`), at the levels precompression uses
/// (it is done once per file, so well); `None` if it does not get smaller.
fn compress(name: &str, bytes: &[u8]) -> Option<Bytes> {
    let mut out = Vec::with_capacity(bytes.len() / 3);
    match name {
        "br" => {
            let mut writer = brotli::CompressorWriter::new(&mut out, 16 * 1024, 9, 22);
            writer.write_all(bytes).ok()?;
            writer.flush().ok()?;
        }
        _ => {
            let mut writer = flate2::write::GzEncoder::new(&mut out, flate2::Compression::best());
            writer.write_all(bytes).ok()?;
            writer.finish().ok()?;
        }
    }
    (out.len() < bytes.len()).then(|| out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_served_from_memory_compressed_once_and_revalidated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pkg = dir.path().join("pkg/0123abcd");
        std::fs::create_dir_all(&pkg).expect("dir");
        let script = "console.log('streamhut');\n".repeat(100);
        std::fs::write(pkg.join("site.js"), &script).expect("js");
        std::fs::write(dir.path().join("favicon.ico"), [0u8; 16]).expect("ico");
        std::fs::write(dir.path().join("streamhut.db"), b"not a site file").expect("db");
        std::fs::write(dir.path().join(".env"), b"SECRET=1").expect("env");
        let assets = load(dir.path());
        let mut paths: Vec<&String> = assets.keys().collect();
        paths.sort();
        assert_eq!(paths, ["/favicon.ico", "/pkg/0123abcd/site.js"]);

        let js = assets["/pkg/0123abcd/site.js"].clone();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, br;q=0"),
        );
        let response = serve(js.clone(), &headers).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .expect("gunzip");
        assert_eq!(plain, script);

        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip"),
        );
        let response = serve(js.clone(), &headers).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
        let etag = response.headers()[header::ETAG].clone();
        headers.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve(js.clone(), &headers).await.status(),
            StatusCode::NOT_MODIFIED
        );

        let response = serve(js, &HeaderMap::new()).await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        let icon = serve(assets["/favicon.ico"].clone(), &HeaderMap::new()).await;
        assert_eq!(icon.headers()[header::CONTENT_TYPE], "image/x-icon");
    }
}
