//! Slack's Web API over HTTPS (rustls, the Mozilla roots): a bot token in
//! `Authorization`, JSON bodies, Slack's answers classified as the use case
//! needs them. Slack answers most errors with HTTP 200 and `ok: false`; a
//! 429 carries `Retry-After` in seconds. A post whose answer never came may
//! have been posted (`SlackOutcome::Unknown`); an update or a read may
//! simply be sent again.

use std::time::Duration;

use async_trait::async_trait;
use milepost_app::ports::SlackApi;
use milepost_app::slack::blocks::SlackMessage;
use milepost_domain::slack::SlackOutcome;
use milepost_domain::Timestamp;
use serde_json::{json, Value};

/// Slack's Web API.
pub const SLACK_API: &str = "https://slack.com/api";

/// How long a call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors Slack gives for what will not work however often it is tried.
const PERMANENT: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "msg_too_long",
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_metadata_format",
    "message_not_found",
    "cant_update_message",
    "restricted_action",
    "user_not_found",
    "ekm_access_denied",
    "team_access_not_granted",
];

pub struct SlackWebApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl SlackWebApi {
    /// The API at `base` (Slack's, or a stand-in's) with the bot token `token`.
    pub fn new(base: &str, token: &str) -> Result<Self, String> {
        let tls = crate::webhook_poster::public_web_tls().map_err(|e| format!("TLS for Slack: {e}"))?;
        let http = reqwest::ClientBuilder::new()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| format!("the HTTP client for Slack: {e}"))?;
        Ok(SlackWebApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// Calls `method` with `body` (JSON, or a query for the read methods
    /// that take no JSON); `Ok` with Slack's answer when `ok` is true.
    async fn call(&self, method: &str, body: CallBody<'_>, may_have_acted: bool) -> Result<Value, SlackOutcome> {
        let url = format!("{}/{method}", self.base);
        let request = match body {
            CallBody::Json(body) => self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body.to_string()),
            CallBody::Query(pairs) => self.http.get(url).query(pairs),
        };
        let response = match request.bearer_auth(&self.token).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(SlackOutcome::Failed(format!("{method}: could not connect"))),
            Err(_) if may_have_acted => return Err(SlackOutcome::Unknown(format!("{method}: no answer"))),
            Err(_) => return Err(SlackOutcome::Failed(format!("{method}: no answer"))),
        };
        let status = response.status().as_u16();
        if status == 429 {
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(30);
            return Err(SlackOutcome::RateLimited(chrono::Duration::seconds(
                wait.clamp(1, 3600),
            )));
        }
        if status >= 500 {
            return Err(SlackOutcome::Failed(format!("{method}: HTTP {status}")));
        }
        let parsed = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes).map_err(|_| ()),
            Err(_) => Err(()),
        };
        let answer: Value = match parsed {
            Ok(v) => v,
            Err(_) if may_have_acted && status < 300 => {
                return Err(SlackOutcome::Unknown(format!("{method}: an answer that is not JSON")))
            }
            Err(_) => return Err(SlackOutcome::Failed(format!("{method}: HTTP {status}, not JSON"))),
        };
        if answer["ok"] == true {
            return Ok(answer);
        }
        let error = answer["error"].as_str().unwrap_or("unknown_error").to_string();
        if error == "ratelimited" {
            return Err(SlackOutcome::RateLimited(chrono::Duration::seconds(30)));
        }
        if PERMANENT.contains(&error.as_str()) {
            Err(SlackOutcome::Refused(format!("{method}: {error}")))
        } else {
            Err(SlackOutcome::Failed(format!("{method}: {error}")))
        }
    }
}

/// How a method takes its arguments, as Slack's Web API spec has it: the
/// write methods a JSON body, the read methods a query string (GET).
enum CallBody<'a> {
    Json(&'a Value),
    Query(&'a [(&'a str, &'a str)]),
}

fn post_body(channel: &str, message: &SlackMessage) -> Value {
    json!({
        "channel": channel,
        "text": message.text,
        "blocks": message.blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

#[async_trait]
impl SlackApi for SlackWebApi {
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, SlackOutcome> {
        match self
            .call("users.lookupByEmail", CallBody::Query(&[("email", email)]), false)
            .await
        {
            Ok(answer) => Ok(answer["user"]["id"].as_str().map(str::to_string)),
            Err(SlackOutcome::Refused(why)) if why.ends_with("users_not_found") => Ok(None),
            Err(SlackOutcome::Failed(why)) if why.ends_with("users_not_found") => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn user_email(&self, user: &str) -> Result<Option<String>, SlackOutcome> {
        let answer = self
            .call("users.info", CallBody::Query(&[("user", user)]), false)
            .await?;
        Ok(answer["user"]["profile"]["email"].as_str().map(str::to_string))
    }

    async fn post(&self, target: &str, message: &SlackMessage) -> SlackOutcome {
        match self
            .call("chat.postMessage", CallBody::Json(&post_body(target, message)), true)
            .await
        {
            Ok(answer) => match (answer["channel"].as_str(), answer["ts"].as_str()) {
                (Some(channel), Some(ts)) => SlackOutcome::Posted {
                    channel: channel.to_string(),
                    ts: ts.to_string(),
                },
                _ => SlackOutcome::Unknown("chat.postMessage: ok without channel and ts".into()),
            },
            Err(outcome) => outcome,
        }
    }

    async fn update(&self, channel: &str, ts: &str, message: &SlackMessage) -> SlackOutcome {
        let body = json!({"channel": channel, "ts": ts, "text": message.text, "blocks": message.blocks});
        match self.call("chat.update", CallBody::Json(&body), false).await {
            Ok(_) => SlackOutcome::Updated,
            Err(outcome) => outcome,
        }
    }

    async fn respond(&self, response_url: &str, text: &str) -> Result<(), SlackOutcome> {
        // Slack's own address (or, in a local run, the stand-in's): a
        // forged payload cannot make us post elsewhere.
        if !(response_url.starts_with("https://hooks.slack.com/")
            || response_url.starts_with(&format!("{}/", self.base)))
        {
            return Err(SlackOutcome::Refused("a response_url that is not Slack's".into()));
        }
        let body = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
        match self
            .http
            .post(response_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(SlackOutcome::Failed(format!(
                "response_url: HTTP {}",
                r.status().as_u16()
            ))),
            Err(_) => Err(SlackOutcome::Failed("response_url: no answer".into())),
        }
    }

    async fn find(
        &self,
        target: &str,
        since: Timestamp,
        block_id: &str,
    ) -> Result<Option<(String, String)>, SlackOutcome> {
        // A user's direct message is read through its channel.
        let channel = if target.starts_with('U') || target.starts_with('W') {
            let opened = self
                .call("conversations.open", CallBody::Json(&json!({"users": target})), false)
                .await?;
            match opened["channel"]["id"].as_str() {
                Some(id) => id.to_string(),
                None => return Ok(None),
            }
        } else {
            target.to_string()
        };
        let oldest = format!("{}.000000", since.timestamp());
        let answer = self
            .call(
                "conversations.history",
                CallBody::Query(&[("channel", &channel), ("oldest", &oldest), ("limit", "200")]),
                false,
            )
            .await?;
        let found = answer["messages"].as_array().into_iter().flatten().find(|m| {
            m["blocks"]
                .as_array()
                .is_some_and(|blocks| blocks.iter().any(|b| b["block_id"] == block_id))
        });
        Ok(found
            .and_then(|m| m["ts"].as_str())
            .map(|ts| (channel.clone(), ts.to_string())))
    }
}

/// Slack as the environment sets it up: the bot token from the SSM
/// parameter `MILEPOST_SLACK_TOKEN_PARAM` (a SecureString; in local runs,
/// `MILEPOST_LOCAL_SLACK_TOKEN`), `MILEPOST_SLACK_TEAM_CHANNEL`,
/// `MILEPOST_SLACK_FALLBACK_CHANNEL`, `MILEPOST_CONSOLE_URL`, and
/// `MILEPOST_SLACK_API_URL` (Slack's unless a stand-in's). None when no
/// token is configured: nothing is posted.
pub async fn slack_from_env(
    config: &aws_config::SdkConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<(SlackWebApi, milepost_app::slack::posts::SlackSettings)>, String> {
    let env = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let token = if env("MILEPOST_LOCAL").as_deref() == Some("1") {
        env("MILEPOST_LOCAL_SLACK_TOKEN")
    } else if let Some(name) = env("MILEPOST_SLACK_TOKEN_PARAM") {
        let token = crate::secrets::ssm_parameter(config, &name).await?.trim().to_string();
        if token.is_empty() {
            return Err(format!(
                "{name} is configured but holds no Slack token: put the bot token (xoxb-...) in it, or unset SlackBotTokenParameterName"
            ));
        }
        Some(token)
    } else {
        None
    };
    let Some(token) = token else { return Ok(None) };
    let base = env("MILEPOST_SLACK_API_URL").unwrap_or_else(|| SLACK_API.to_string());
    let api = SlackWebApi::new(&base, &token)?;
    Ok(Some((
        api,
        milepost_app::slack::posts::SlackSettings {
            team_channel: env("MILEPOST_SLACK_TEAM_CHANNEL"),
            fallback_channel: env("MILEPOST_SLACK_FALLBACK_CHANNEL"),
            console_url: env("MILEPOST_CONSOLE_URL").map(|u| u.trim_end_matches('/').to_string()),
        },
    )))
}

/// What the actions function needs to take Slack's button presses: the Web
/// API (to read the presser's address) and the app's signing secret, from
/// the SSM parameters `MILEPOST_SLACK_TOKEN_PARAM` and
/// `MILEPOST_SLACK_SIGNING_SECRET_PARAM` (in local runs,
/// `MILEPOST_LOCAL_SLACK_TOKEN` and `MILEPOST_LOCAL_SLACK_SIGNING_SECRET`).
/// None when either is unset: the route answers 404.
pub async fn slack_interactivity_from_env(
    config: &aws_config::SdkConfig,
    env: impl Fn(&str) -> Option<String> + Clone,
) -> Result<Option<(SlackWebApi, milepost_app::slack::signature::SlackSigningSecret)>, String> {
    let get = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let secret = if get("MILEPOST_LOCAL").as_deref() == Some("1") {
        get("MILEPOST_LOCAL_SLACK_SIGNING_SECRET")
    } else if let Some(name) = get("MILEPOST_SLACK_SIGNING_SECRET_PARAM") {
        Some(crate::secrets::ssm_parameter(config, &name).await?)
    } else {
        None
    };
    let Some(secret) = secret else { return Ok(None) };
    let secret = milepost_app::slack::signature::SlackSigningSecret::new(&secret)
        .ok_or("the Slack signing secret is configured but empty: put the app's signing secret in it")?;
    match slack_from_env(config, env).await? {
        Some((api, _)) => Ok(Some((api, secret))),
        None => Err("a Slack signing secret is set but no bot token: set SlackBotTokenParameterName too".into()),
    }
}
