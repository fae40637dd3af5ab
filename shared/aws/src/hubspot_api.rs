//! HubSpot's CRM API over HTTPS (rustls, the Mozilla roots): a private
//! app's token in `Authorization`, JSON bodies, HubSpot's answers classified
//! as the use case needs them.
//!
//! HubSpot's limits are honoured from its own headers: every answer carries
//! `X-HubSpot-RateLimit-Remaining` and `-Interval-Milliseconds` (the burst
//! window every app of the portal shares); when the window is spent, the
//! next call waits for it to pass instead of drawing a 429. A 429 waits
//! `Retry-After` (or the window). The search API has its own limit (4
//! requests a second), so searches are spaced a quarter second apart.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use milepost_app::crm::properties::{GROUP, GROUP_LABEL, TASK_ID};
use milepost_app::ports::{CrmProperties, CrmProperty, DealPage, HubSpotApi};
use milepost_domain::crm::{CrmOutcome, Deal};
use milepost_domain::Timestamp;
use serde_json::{json, Value};
use tokio::sync::Mutex;

/// HubSpot's API.
pub const HUBSPOT_API: &str = "https://api.hubapi.com";

/// How long a call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The association of a task with a company (HubSpot-defined type 192).
pub const TASK_TO_COMPANY: u32 = 192;

/// The search API's own limit: four requests a second.
const SEARCH_SPACING: Duration = Duration::from_millis(250);

/// The longest a call waits for a spent burst window (HubSpot's is 10 s).
const MAX_WINDOW_WAIT: Duration = Duration::from_secs(10);

pub struct HubSpotRestApi {
    http: reqwest::Client,
    base: String,
    token: String,
    /// No call before this: the burst window was spent.
    paused_until: Mutex<Option<Instant>>,
    last_search: Mutex<Option<Instant>>,
}

/// Whether a call that got no answer may have acted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// A create: sent again, it could make a second record.
    Creates,
    /// A read or a write of whole values: safe to send again.
    Repeatable,
}

impl HubSpotRestApi {
    /// The API at `base` (HubSpot's, or a stand-in's) with a private app's token.
    pub fn new(base: &str, token: &str) -> Result<Self, String> {
        let tls = crate::webhook_poster::public_web_tls().map_err(|e| format!("TLS for HubSpot: {e}"))?;
        let http = reqwest::ClientBuilder::new()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| format!("the HTTP client for HubSpot: {e}"))?;
        Ok(HubSpotRestApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            paused_until: Mutex::new(None),
            last_search: Mutex::new(None),
        })
    }

    /// Sends one call; `Ok((status, body))` for any answer below 500 but 429.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        effect: Effect,
    ) -> Result<(u16, Value), CrmOutcome> {
        let paused = *self.paused_until.lock().await;
        if let Some(until) = paused {
            tokio::time::sleep_until(until.into()).await;
        }
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(CrmOutcome::Failed(format!("{what}: could not connect"))),
            Err(_) if effect == Effect::Creates => return Err(CrmOutcome::Unknown(format!("{what}: no answer"))),
            Err(_) => return Err(CrmOutcome::Failed(format!("{what}: no answer"))),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let window = header("x-hubspot-ratelimit-interval-milliseconds").map(Duration::from_millis);
        if header("x-hubspot-ratelimit-remaining") == Some(0) {
            let wait = window.unwrap_or(MAX_WINDOW_WAIT).min(MAX_WINDOW_WAIT);
            *self.paused_until.lock().await = Some(Instant::now() + wait);
        }
        if status == 429 {
            let wait = header("retry-after")
                .map(Duration::from_secs)
                .or(window)
                .unwrap_or(MAX_WINDOW_WAIT);
            let daily = response.text().await.is_ok_and(|t| t.contains("\"DAILY\""));
            let wait = if daily { Duration::from_secs(3600) } else { wait };
            return Err(CrmOutcome::RateLimited(
                chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(10)),
            ));
        }
        if status >= 500 {
            return Err(CrmOutcome::Failed(format!("{what}: HTTP {status}")));
        }
        let parsed = response.bytes().await.ok().map(|b| {
            if b.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&b).unwrap_or(Value::Null)
            }
        });
        match parsed {
            Some(v) => Ok((status, v)),
            None if effect == Effect::Creates && status < 300 => {
                Err(CrmOutcome::Unknown(format!("{what}: the answer was cut off")))
            }
            None => Err(CrmOutcome::Failed(format!(
                "{what}: HTTP {status}, the answer was cut off"
            ))),
        }
    }

    /// HubSpot's refusal of a call, in its words (`category`: `message`).
    fn refused(what: &str, status: u16, body: &Value) -> CrmOutcome {
        let category = body["category"].as_str().unwrap_or("error");
        let message = body["message"].as_str().unwrap_or("");
        let clipped: String = message.chars().take(300).collect();
        CrmOutcome::Refused(format!("{what}: HTTP {status} {category}: {clipped}"))
    }

    /// Waits until a search keeps to the search API's own limit.
    async fn space_search(&self) {
        let mut last = self.last_search.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until((at + SEARCH_SPACING).into()).await;
        }
        *last = Some(Instant::now());
    }

    async fn search(&self, object: &str, property: &str, value: &str) -> Result<Vec<String>, CrmOutcome> {
        self.space_search().await;
        let body = search_body(property, value);
        let path = format!("/crm/v3/objects/{object}/search");
        match self
            .call(reqwest::Method::POST, &path, Some(&body), Effect::Repeatable)
            .await?
        {
            (200, answer) => Ok(answer["results"]
                .as_array()
                .map(|r| r.iter().filter_map(|o| o["id"].as_str().map(String::from)).collect())
                .unwrap_or_default()),
            (status, answer) => Err(Self::refused(&format!("searching {object}"), status, &answer)),
        }
    }

    async fn write(&self, object: &str, id: &str, properties: &CrmProperties) -> CrmOutcome {
        let path = format!("/crm/v3/objects/{object}/{}", url_part(id));
        let body = json!({ "properties": properties });
        match self
            .call(reqwest::Method::PATCH, &path, Some(&body), Effect::Repeatable)
            .await
        {
            Ok((200, _)) => CrmOutcome::Written,
            Ok((404, _)) => CrmOutcome::Gone,
            Ok((status, answer)) => Self::refused(&format!("writing {object}"), status, &answer),
            Err(outcome) => outcome,
        }
    }
}

/// A search for the records whose `property` equals `value`.
pub fn search_body(property: &str, value: &str) -> Value {
    json!({
        "filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": value}]}],
        "properties": [property],
        "limit": 5,
    })
}

/// A property as the properties API creates it, in Milepost's group.
pub fn property_body(property: &CrmProperty) -> Value {
    let mut body = json!({
        "name": property.name,
        "label": property.label,
        "description": property.description,
        "type": property.kind,
        "fieldType": property.field_type,
        "groupName": GROUP,
    });
    if !property.options.is_empty() {
        body["options"] = property
            .options
            .iter()
            .enumerate()
            .map(|(i, (value, label))| json!({"label": label, "value": value, "displayOrder": i, "hidden": false}))
            .collect();
    }
    body
}

/// A task made with `properties`, associated with company `company_id`.
pub fn task_body(company_id: &str, properties: &CrmProperties) -> Value {
    json!({
        "properties": properties,
        "associations": [{
            "to": {"id": company_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO_COMPANY}],
        }],
    })
}

fn url_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[async_trait]
impl HubSpotApi for HubSpotRestApi {
    async fn create_property_group(&self, object: &str) -> Result<(), CrmOutcome> {
        let body = json!({"name": GROUP, "label": GROUP_LABEL, "displayOrder": -1});
        let path = format!("/crm/v3/properties/{object}/groups");
        match self
            .call(reqwest::Method::POST, &path, Some(&body), Effect::Repeatable)
            .await?
        {
            (200 | 201 | 409, _) => Ok(()),
            (status, answer) => Err(Self::refused("creating the property group", status, &answer)),
        }
    }

    async fn create_property(&self, object: &str, property: &CrmProperty) -> Result<(), CrmOutcome> {
        let path = format!("/crm/v3/properties/{object}");
        match self
            .call(
                reqwest::Method::POST,
                &path,
                Some(&property_body(property)),
                Effect::Repeatable,
            )
            .await?
        {
            (200 | 201 | 409, _) => Ok(()),
            (status, answer) => Err(Self::refused(
                &format!("creating the property {}", property.name),
                status,
                &answer,
            )),
        }
    }

    async fn companies_with_domain(&self, domain: &str) -> Result<Vec<String>, CrmOutcome> {
        self.search("companies", "domain", domain).await
    }

    async fn update_company(&self, id: &str, properties: &CrmProperties) -> CrmOutcome {
        self.write("companies", id, properties).await
    }

    async fn owner_id(&self, email: &str) -> Result<Option<String>, CrmOutcome> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("email", email)
            .append_pair("limit", "1")
            .finish();
        match self
            .call(
                reqwest::Method::GET,
                &format!("/crm/v3/owners/?{query}"),
                None,
                Effect::Repeatable,
            )
            .await?
        {
            (200, answer) => Ok(answer["results"][0]["id"]
                .as_str()
                .map(String::from)
                .or_else(|| answer["results"][0]["id"].as_u64().map(|n| n.to_string()))),
            (status, answer) => Err(Self::refused("reading owners", status, &answer)),
        }
    }

    async fn create_task(&self, company_id: &str, properties: &CrmProperties) -> CrmOutcome {
        match self
            .call(
                reqwest::Method::POST,
                "/crm/v3/objects/tasks",
                Some(&task_body(company_id, properties)),
                Effect::Creates,
            )
            .await
        {
            Ok((201 | 200, answer)) => match answer["id"].as_str() {
                Some(id) => CrmOutcome::Created(id.to_string()),
                None => CrmOutcome::Unknown("creating a task: an answer without its id".into()),
            },
            Ok((status, answer)) => Self::refused("creating a task", status, &answer),
            Err(outcome) => outcome,
        }
    }

    async fn update_task(&self, id: &str, properties: &CrmProperties) -> CrmOutcome {
        self.write("tasks", id, properties).await
    }

    async fn find_task(&self, task_id: &str) -> Result<Option<String>, CrmOutcome> {
        Ok(self.search("tasks", TASK_ID, task_id).await?.into_iter().next())
    }

    async fn deals_changed(
        &self,
        since: Timestamp,
        stages: &[String],
        pipeline: Option<&str>,
        after: Option<&str>,
    ) -> Result<DealPage, CrmOutcome> {
        self.space_search().await;
        let body = deals_body(since, stages, pipeline, after);
        match self
            .call(
                reqwest::Method::POST,
                "/crm/v3/objects/deals/search",
                Some(&body),
                Effect::Repeatable,
            )
            .await?
        {
            (200, answer) => Ok(DealPage {
                deals: answer["results"]
                    .as_array()
                    .map(|r| r.iter().filter_map(deal_of).collect())
                    .unwrap_or_default(),
                next: answer["paging"]["next"]["after"].as_str().map(String::from),
            }),
            (status, answer) => Err(Self::refused("searching deals", status, &answer)),
        }
    }

    async fn deal_companies(&self, deal_id: &str) -> Result<Vec<String>, CrmOutcome> {
        let path = format!(
            "/crm/v4/objects/deals/{}/associations/companies?limit=100",
            url_part(deal_id)
        );
        match self.call(reqwest::Method::GET, &path, None, Effect::Repeatable).await? {
            (200, answer) => Ok(answer["results"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|a| match &a["toObjectId"] {
                            Value::String(id) => Some(id.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default()),
            (404, _) => Ok(Vec::new()),
            (status, answer) => Err(Self::refused("reading a deal's companies", status, &answer)),
        }
    }
}

/// A search for deals in `stages` (of `pipeline`) changed at or after `since`, oldest change first.
pub fn deals_body(since: Timestamp, stages: &[String], pipeline: Option<&str>, after: Option<&str>) -> Value {
    let mut filters = vec![
        json!({"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since.timestamp_millis().to_string()}),
        json!({"propertyName": "dealstage", "operator": "IN", "values": stages}),
    ];
    if let Some(pipeline) = pipeline {
        filters.push(json!({"propertyName": "pipeline", "operator": "EQ", "value": pipeline}));
    }
    let mut body = json!({
        "filterGroups": [{"filters": filters}],
        "sorts": ["hs_lastmodifieddate"],
        "properties": ["dealstage", "closedate", "amount", "hs_lastmodifieddate"],
        "limit": 100,
    });
    if let Some(after) = after {
        body["after"] = json!(after);
    }
    body
}

/// A deal from a search's result; none without an id, a stage or a time of change.
fn deal_of(found: &Value) -> Option<Deal> {
    let p = &found["properties"];
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    Some(Deal {
        id: found["id"].as_str()?.to_string(),
        stage: p["dealstage"].as_str()?.to_string(),
        close_date: time(&p["closedate"]).map(|t| t.date_naive()).or_else(|| {
            p["closedate"]
                .as_str()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        }),
        amount: p["amount"].as_str().and_then(|a| a.trim().parse().ok()),
        changed_at: time(&p["hs_lastmodifieddate"])?,
    })
}

/// HubSpot, when the deployment names a private app's token: the SSM
/// parameter `MILEPOST_HUBSPOT_TOKEN_PARAM` (in local runs,
/// `MILEPOST_LOCAL_HUBSPOT_TOKEN`), at `MILEPOST_HUBSPOT_API_URL` (HubSpot's
/// own unless a stand-in's), with the deal stages that record renewals
/// (`MILEPOST_HUBSPOT_RENEWAL_STAGES`, `closedwon=renewed,...`) and their
/// pipeline (`MILEPOST_HUBSPOT_RENEWAL_PIPELINE`). None when unset: nothing
/// is written.
pub async fn hubspot_from_env(
    config: &aws_config::SdkConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<(HubSpotRestApi, milepost_app::crm::CrmSettings)>, String> {
    let env = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let token = if env("MILEPOST_LOCAL").as_deref() == Some("1") {
        env("MILEPOST_LOCAL_HUBSPOT_TOKEN")
    } else if let Some(name) = env("MILEPOST_HUBSPOT_TOKEN_PARAM") {
        let token = crate::secrets::ssm_parameter(config, &name).await?.trim().to_string();
        if token.is_empty() {
            return Err(format!(
                "{name} is configured but holds no HubSpot token: put the private app's access token (pat-...) in it, or unset HubSpotTokenParameterName"
            ));
        }
        Some(token)
    } else {
        None
    };
    let Some(token) = token else { return Ok(None) };
    let base = env("MILEPOST_HUBSPOT_API_URL").unwrap_or_else(|| HUBSPOT_API.to_string());
    Ok(Some((
        HubSpotRestApi::new(&base, &token)?,
        milepost_app::crm::CrmSettings {
            console_url: env("MILEPOST_CONSOLE_URL").map(|u| u.trim_end_matches('/').to_string()),
            renewal_stages: milepost_domain::crm::renewal_stages(
                &env("MILEPOST_HUBSPOT_RENEWAL_STAGES").unwrap_or_default(),
            )
            .map_err(|why| format!("MILEPOST_HUBSPOT_RENEWAL_STAGES (HubSpotRenewalStages): {why}"))?,
            renewal_pipeline: env("MILEPOST_HUBSPOT_RENEWAL_PIPELINE"),
        },
    )))
}
