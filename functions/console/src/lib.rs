//! The console's HTTP adapter: API Gateway's request in as a
//! `milepost_app::console::Request`, the console's `Response` out. Pages,
//! sign-in and every check are the console's (`milepost_app::console`).
//!
//! `handle` is a plain async function over the console and the request, so
//! it is tested without the Lambda runtime; `main.rs` only wires it up.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use milepost_app::console::{self, Console};

/// The largest form accepted: a note is at most 500 bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The request as the console reads it. Several `Cookie` headers (HTTP
/// API's payload gives each cookie its own) are joined as a browser joins them.
pub fn to_console(request: &Request) -> console::Request {
    let cookies: Vec<&str> = request
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    console::Request {
        method: request.method().as_str().to_string(),
        path: request.uri().path().to_string(),
        query: request.uri().query().unwrap_or_default().to_string(),
        body: request.body().as_ref().to_vec(),
        cookie: (!cookies.is_empty()).then(|| cookies.join("; ")),
        origin: header(request, "origin"),
        host: header(request, "host"),
        fetch_site: header(request, "sec-fetch-site"),
    }
}

fn from_console(answer: console::Response) -> Response<Body> {
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    let body = if answer.body.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(answer.body) {
            Ok(text) => Body::Text(text),
            Err(bytes) => Body::Binary(bytes.into_bytes()),
        }
    };
    response.body(body).unwrap_or_else(|_| {
        let mut broken = Response::new(Body::Empty);
        *broken.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        broken
    })
}

/// Answers one request.
pub async fn handle(console: &Console, request: Request) -> Response<Body> {
    if request.body().as_ref().len() > MAX_FORM_BYTES {
        let mut too_large = Response::new(Body::Text("That form is too large.\n".into()));
        *too_large.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return too_large;
    }
    from_console(console.handle(&to_console(&request)).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_reaches_the_console_as_the_browser_sent_it() {
        let request: Request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("https://console.example/tasks/t%3A1/done?x=1")
            .header("host", "console.example")
            .header("cookie", "a=1")
            .header("cookie", "__Host-milepost-session=v1.p.s")
            .header("origin", "https://console.example")
            .header("sec-fetch-site", "same-origin")
            .body(Body::Text("csrf=t&form_id=f".into()))
            .unwrap();
        let ours = to_console(&request);
        assert_eq!(
            (ours.method.as_str(), ours.path.as_str(), ours.query.as_str()),
            ("POST", "/tasks/t%3A1/done", "x=1")
        );
        assert_eq!(ours.cookie.as_deref(), Some("a=1; __Host-milepost-session=v1.p.s"));
        assert_eq!(ours.fetch_site.as_deref(), Some("same-origin"));
        assert_eq!(ours.body, b"csrf=t&form_id=f");
        let answer = from_console(console::Response {
            status: 303,
            headers: vec![
                ("location".into(), "/tasks".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
            ],
            body: Vec::new(),
        });
        assert_eq!(answer.status(), 303);
        assert_eq!(
            answer.headers().get_all("set-cookie").iter().count(),
            2,
            "every cookie is sent"
        );
    }
}
