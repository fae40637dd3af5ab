//! `make local`'s tracking API: the ingest function's handler behind a plain
//! HTTP server on `MILEPOST_TRACKING_PORT`, configured like the function
//! (`MILEPOST_LOCAL=1`, `MILEPOST_TABLE`, `AWS_ENDPOINT_URL`, ...).
//!
//! Why not `cargo lambda watch`, which serves the other functions: it answers
//! 500 itself to any request body that is not UTF-8, so a gzipped batch
//! (RudderStack's SDK gzips by default) never reached the function, and the
//! SDK retried it forever. API Gateway and Function URLs hand such a body
//! over base64-encoded and `lambda_http` decodes it; this server passes the
//! bytes as they came.

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request};
use milepost_app::ingest::Ingestion;
use milepost_ingest::{handle, IngestConfig};

/// Bodies past this are cut off (the handler refuses anything near it anyway).
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    milepost_aws::lambda::init_logging();
    let port: u16 = std::env::var("MILEPOST_TRACKING_PORT")
        .map_err(|_| "set MILEPOST_TRACKING_PORT")?
        .parse()
        .map_err(|_| "MILEPOST_TRACKING_PORT must be a port number")?;
    let sdk = milepost_aws::lambda::sdk_config().await?;
    let shared: Arc<(Ingestion, IngestConfig)> = Arc::new(milepost_ingest::from_env(&sdk).await?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(port, "tracking API listening");
    loop {
        let (stream, _) = listener.accept().await?;
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let Ok(collected) = Limited::new(body, MAX_REQUEST_BYTES).collect().await else {
                        let mut refused =
                            hyper::Response::new(Full::new(Bytes::from_static(b"request too large or cut off")));
                        *refused.status_mut() = hyper::StatusCode::PAYLOAD_TOO_LARGE;
                        return Ok::<_, std::convert::Infallible>(refused);
                    };
                    let request = Request::from_parts(parts, Body::from(collected.to_bytes().to_vec()));
                    let (parts, body) = handle(&shared.0, &shared.1, request).await.into_parts();
                    Ok(hyper::Response::from_parts(
                        parts,
                        Full::new(Bytes::from(body.as_ref().to_vec())),
                    ))
                }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::warn!(error = %milepost_app::ErrorChain(&e), "tracking API connection ended with an error");
            }
        });
    }
}
