//! Outbound webhooks' HTTP: one POST per attempt, over rustls with the
//! Mozilla roots (endpoints are on the public web), no redirects followed
//! (a 3xx is the endpoint's answer, not a new address to send the event
//! to), no retries of its own (the use case schedules them), a short
//! timeout (Standard Webhooks asks receivers to answer within seconds).

use std::time::Duration;

use async_trait::async_trait;
use milepost_app::ports::{PostAnswer, WebhookPost, WebhookPoster};
use milepost_domain::webhooks::AttemptResult;

/// How long an endpoint has to answer.
pub const POST_TIMEOUT: Duration = Duration::from_secs(15);

pub struct HttpWebhookPoster {
    http: reqwest::Client,
}

/// rustls with aws-lc (the AWS SDK's crypto) and the Mozilla roots: a
/// client for servers on the public web (an identity provider, a webhook endpoint).
pub(crate) fn public_web_tls() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl HttpWebhookPoster {
    pub fn new() -> Result<Self, String> {
        let tls = public_web_tls().map_err(|e| format!("TLS for webhooks: {e}"))?;
        let http = reqwest::ClientBuilder::new()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(POST_TIMEOUT)
            .build()
            .map_err(|e| format!("the HTTP client for webhooks: {e}"))?;
        Ok(HttpWebhookPoster { http })
    }
}

/// `Retry-After` in seconds (the form rate limiters send); an HTTP date is
/// read as no wait asked, and the schedule decides.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<chrono::Duration> {
    let secs: i64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (0..=86_400).contains(&secs).then(|| chrono::Duration::seconds(secs))
}

#[async_trait]
impl WebhookPoster for HttpWebhookPoster {
    async fn post(&self, post: WebhookPost<'_>) -> PostAnswer {
        let mut request = self.http.post(post.url).body(post.body.to_string());
        for (name, value) in &post.headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) => PostAnswer {
                retry_after: retry_after(response.headers()),
                result: AttemptResult::Status {
                    status: response.status().as_u16(),
                },
            },
            Err(e) => {
                let error = if e.is_timeout() {
                    format!("no answer within {} s", POST_TIMEOUT.as_secs())
                } else if e.is_connect() {
                    "could not connect".to_string()
                } else {
                    "the request failed".to_string()
                };
                // The URL stays out of the attempt's words: the operator's listing shows it once.
                PostAnswer {
                    result: AttemptResult::NoAnswer { error },
                    retry_after: None,
                }
            }
        }
    }
}
