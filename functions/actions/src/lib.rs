//! The action links' endpoint: `GET /v1/actions/{token}` shows what the link
//! would do and changes nothing (mail scanners fetch every link), `POST`
//! does it, once. Pages are server-rendered HTML with no JavaScript.
//!
//! `handle` is a plain async function over the use case and the request, so
//! it is tested without the Lambda runtime; `main.rs` only wires it up.

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, RequestPayloadExt, Response};
use milepost_app::actions::{ActionForm, Actions, Page, PageUrls};
use milepost_domain::SuppressionSource;
use serde::Deserialize;

pub mod slack;

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

/// Whether a state-changing POST may come from where it says it does: a
/// browser names a cross-site form's origin (`Origin`, `Sec-Fetch-Site`),
/// and only the page's own origin, or the person's own navigation, may act.
/// A request naming neither (a mail client, curl) is judged by its token alone.
fn same_origin(request: &Request) -> bool {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        if !matches!(site.trim(), "same-origin" | "none") {
            return false;
        }
    }
    let Some(origin) = header("origin") else {
        return true;
    };
    let own_host = header("host")
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let origin_host = origin.split_once("://").map(|(_, host)| host.trim_end_matches('/'));
    match (origin_host, own_host) {
        (Some(theirs), Some(ours)) => theirs.eq_ignore_ascii_case(&ours),
        _ => false, // `Origin: null` (a sandboxed or privacy-redirected form), or no host to compare
    }
}

fn cross_site() -> Page {
    plain(
        403,
        "Not allowed from another site",
        "This button only works on the page Milepost showed you. Nothing was changed.",
    )
}

/// Whether a POST is a mail client's one-click unsubscribe (RFC 8058): the
/// field `List-Unsubscribe=One-Click`, sent as `application/x-www-form-urlencoded`
/// or as `multipart/form-data`, as the RFC allows either.
async fn is_one_click(request: &Request) -> bool {
    let content_type = request
        .headers()
        .get(lambda_http::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body: &[u8] = request.body().as_ref();
    let one_click = |name: &str, value: &str| name == "List-Unsubscribe" && value.trim() == "One-Click";
    if let Ok(boundary) = multer::parse_boundary(content_type) {
        let data = bytes::Bytes::copy_from_slice(body);
        let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
        let mut form = multer::Multipart::new(stream, boundary);
        while let Ok(Some(field)) = form.next_field().await {
            let name = field.name().unwrap_or_default().to_string();
            if let Ok(value) = field.text().await {
                if one_click(&name, &value) {
                    return true;
                }
            }
        }
        return false;
    }
    form_urlencoded::parse(body).any(|(name, value)| one_click(&name, &value))
}

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
        Method::GET | Method::HEAD => {
            let url = PageUrls::form_action(actions.page_urls.actions.as_deref(), token, path);
            actions.show(token, &url).await
        }
        Method::POST => {
            if !same_origin(&request) {
                cross_site()
            } else if request.body().len() > MAX_FORM_BYTES {
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
        Method::GET | Method::HEAD => {
            let path = request.uri().path();
            let url = PageUrls::form_action(actions.page_urls.unsubscribe.as_deref(), token, path);
            actions.show_unsubscribe(token, &url).await
        }
        Method::POST if request.body().len() > MAX_FORM_BYTES => {
            plain(413, "Too large", "That is more than an unsubscribe sends.")
        }
        Method::POST => {
            // RFC 8058: a mail provider posts one-click from its own servers,
            // from no page of ours; the page's own button must come from the page.
            if is_one_click(&request).await {
                actions.unsubscribe(token, SuppressionSource::OneClick).await
            } else if !same_origin(&request) {
                cross_site()
            } else {
                actions.unsubscribe(token, SuppressionSource::Page).await
            }
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

#[cfg(test)]
mod tests {
    use milepost_app::actions::PageUrls;

    #[test]
    fn a_page_posts_to_its_link_however_it_was_opened() {
        let token = "v2.abc.def";
        let public = Some("https://links.example/prod/v1/actions/");
        for path in [
            "/v1/actions/v2.abc.def",
            "/v1/actions/v2.abc.def/",
            "/v1/actions/v2.abc.def//",
        ] {
            assert_eq!(
                PageUrls::form_action(public, token, path),
                "https://links.example/prod/v1/actions/v2.abc.def"
            );
            assert_eq!(PageUrls::form_action(None, token, path), "/v1/actions/v2.abc.def");
        }
    }
}
