//! The action links' endpoint: `GET /v1/actions/{token}` shows what the link
//! would do and changes nothing (mail scanners fetch every link), `POST`
//! does it, once. Pages are server-rendered HTML with no JavaScript.
//!
//! `handle` is a plain async function over the use case and the request, so
//! it is tested without the Lambda runtime; `main.rs` only wires it up.

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, RequestPayloadExt, Response};
use milepost_app::actions::{ActionForm, Actions, Page};
use milepost_domain::SuppressionSource;
use serde::Deserialize;

/// The form a confirmation page posts.
#[derive(Debug, Default, Deserialize)]
struct FormBody {
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
}

/// The largest form accepted: a one-line note and an outcome fit many times over.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// The token after `prefix` in `path`, if the path is `…<prefix><token>[/]`.
fn token_after<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    path.split_once(prefix)
        .map(|(_, token)| token.trim_end_matches('/'))
        .filter(|t| !t.is_empty() && !t.contains('/'))
}

/// What a mail client's one-click unsubscribe POSTs (RFC 8058).
const ONE_CLICK_BODY: &[u8] = b"List-Unsubscribe=One-Click";

/// Handles one HTTP request (API Gateway HTTP API v2 or a Function URL):
/// `/v1/actions/{token}` and `/v1/unsubscribe/{token}`.
pub async fn handle(actions: &Actions, request: Request) -> Response<Body> {
    let path = request.uri().path();
    if let Some(token) = token_after(path, "/v1/unsubscribe/") {
        let token = token.to_string();
        return unsubscribe(actions, &token, request).await;
    }
    let Some(token) = token_after(path, "/v1/actions/") else {
        return html(&plain(404, "Not found", "There is nothing here."));
    };
    let page = match *request.method() {
        Method::GET | Method::HEAD => actions.show(token, token).await,
        Method::POST => {
            if request.body().len() > MAX_FORM_BYTES {
                plain(413, "Too large", "That form is larger than a note needs.")
            } else {
                match request.payload::<FormBody>() {
                    Ok(form) => {
                        let form = form.unwrap_or_default();
                        let form = ActionForm {
                            note: form.note,
                            outcome: form.outcome,
                        };
                        actions.act(token, &form).await
                    }
                    Err(_) => plain(
                        400,
                        "Not understood",
                        "The form could not be read. Nothing was changed.",
                    ),
                }
            }
        }
        _ => plain(405, "Not allowed", "Open the link, then use its button."),
    };
    // Never the token: it is the credential.
    tracing::info!(method = %request.method(), status = page.status, "action page");
    let mut response = html(&page);
    if *request.method() == Method::HEAD {
        *response.body_mut() = Body::Empty;
    }
    response
}

/// An unsubscribe link: `GET` shows its page, `POST` unsubscribes, whether
/// from that page's button or straight from a mail client (one-click).
async fn unsubscribe(actions: &Actions, token: &str, request: Request) -> Response<Body> {
    let page = match *request.method() {
        Method::GET | Method::HEAD => actions.show_unsubscribe(token, token).await,
        Method::POST if request.body().len() > MAX_FORM_BYTES => {
            plain(413, "Too large", "That is more than an unsubscribe sends.")
        }
        Method::POST => {
            let body: &[u8] = request.body().as_ref();
            let one_click = body.windows(ONE_CLICK_BODY.len()).any(|w| w == ONE_CLICK_BODY);
            let source = if one_click {
                SuppressionSource::OneClick
            } else {
                SuppressionSource::Page
            };
            actions.unsubscribe(token, source).await
        }
        _ => plain(405, "Not allowed", "Open the link, then use its button."),
    };
    tracing::info!(method = %request.method(), status = page.status, "unsubscribe page");
    let mut response = html(&page);
    if *request.method() == Method::HEAD {
        *response.body_mut() = Body::Empty;
    }
    response
}

/// A bare page for what happens before a token is read.
fn plain(status: u16, title: &str, text: &str) -> Page {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    Page {
        status,
        html: format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title></head><body><main><h1>{t}</h1><p>{p}</p></main></body></html>",
            t = escape(title),
            p = escape(text)
        ),
    }
}

fn html(page: &Page) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .body(Body::from(page.html.clone()))
        .expect("a valid response")
}
