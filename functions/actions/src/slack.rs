//! `POST /v1/slack/interactions`: Slack's interactivity requests (a button
//! pressed on a task's message). The signature is checked on the raw body
//! before anything is parsed (`SlackInteractions::handle`); the answer is
//! an empty 200 within Slack's three seconds, with what happened told to the
//! person who pressed through the interaction's `response_url`.

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use milepost_app::ports::SlackApi;
use milepost_app::slack::interactions::SlackInteractions;

/// The route's path (after the API's stage, if any).
pub const PATH: &str = "/v1/slack/interactions";

/// Whether `request` is for this route.
pub fn is_slack(request: &Request) -> bool {
    request.uri().path().trim_end_matches('/').ends_with(PATH)
}

fn empty(status: u16) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .expect("a status and a header make a response")
}

/// One request to the route; `slack`, none where Slack is not set up (404).
pub async fn handle(slack: Option<(&SlackInteractions<'_>, &dyn SlackApi)>, request: Request) -> Response<Body> {
    let Some((interactions, api)) = slack else {
        return empty(404);
    };
    if request.method() != Method::POST {
        return empty(405);
    }
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let answer = interactions
        .handle(
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            request.body().as_ref(),
        )
        .await;
    if let Some(notice) = &answer.notice {
        if let Err(e) = api.respond(&notice.response_url, &notice.text).await {
            tracing::warn!(error = ?e, "the note to the person who pressed was not posted");
        }
    }
    tracing::info!(status = answer.status, "slack interaction");
    empty(answer.status)
}
