//! Least privilege, checked: what code asked of AWS on a test's moto server
//! (moto's request recorder), as IAM actions, beside what a function's policy
//! in `infra/template.yaml` grants. A test runs a function's handler with
//! recording on and asserts the first is within the second, so a deployed
//! function never meets an AccessDenied the emulator did not show.

use std::collections::BTreeSet;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::MotoServer;

impl MotoServer {
    /// Turns moto's request recorder on or off; requests made while it is on
    /// are what `recorded_actions` reports.
    pub async fn record_requests(&self, on: bool) {
        let what = if on { "start-recording" } else { "stop-recording" };
        let uri: http::Uri = format!("{}/moto-api/recorder/{what}", self.endpoint)
            .parse()
            .expect("the emulator's URL");
        let request = http::Request::post(uri)
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let response = client.request(request).await.expect("moto's recorder answers");
        assert!(response.status().is_success(), "moto's recorder: {}", response.status());
    }

    /// `recorded_actions`, and the recording emptied for what comes next.
    pub fn take_recorded_actions(&self) -> BTreeSet<String> {
        let actions = self.recorded_actions();
        let _ = std::fs::write(&self.recording, "");
        actions
    }

    /// The IAM actions of the requests recorded so far (`dynamodb:GetItem`,
    /// `events:PutEvents`, ...). A transaction counts as the actions of its
    /// items, as IAM authorises it.
    pub fn recorded_actions(&self) -> BTreeSet<String> {
        let Ok(text) = std::fs::read_to_string(&self.recording) else {
            return BTreeSet::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .flat_map(|line| {
                let entry: RecordedRequest = serde_json::from_str(line).expect("a line of moto's recording");
                entry.actions()
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct RecordedRequest {
    headers: std::collections::HashMap<String, String>,
    method: String,
    url: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    body_encoded: bool,
}

impl RecordedRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> Vec<u8> {
        if self.body_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(&self.body)
                .unwrap_or_default()
        } else {
            self.body.clone().into_bytes()
        }
    }

    fn actions(&self) -> Vec<String> {
        if let Some(target) = self.header("x-amz-target") {
            let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
            let service = match prefix {
                p if p.starts_with("DynamoDB_") => "dynamodb",
                "AWSEvents" => "events",
                "AWSStepFunctions" => "states",
                "AmazonSSM" => "ssm",
                "secretsmanager" => "secretsmanager",
                other => other,
            };
            if service == "dynamodb" && operation == "TransactWriteItems" {
                return transaction_actions(&self.body());
            }
            if service == "dynamodb" && WRITES.contains(&operation) {
                let body: serde_json::Value = serde_json::from_slice(&self.body()).unwrap_or_default();
                let action = format!("dynamodb:{operation}");
                return match leading_key(&body) {
                    Some(pk) => vec![format!("{action}{ON}{pk}"), action],
                    None => vec![action],
                };
            }
            if service == "dynamodb" && (operation == "Query" || operation == "Scan") {
                // A grant on the table does not cover its indexes, nor the reverse.
                let body: serde_json::Value = serde_json::from_slice(&self.body()).unwrap_or_default();
                let on = body["IndexName"]
                    .as_str()
                    .map_or_else(|| "table".to_string(), |i| format!("index/{i}"));
                return vec![format!("dynamodb:{operation}@{on}")];
            }
            return vec![format!("{service}:{operation}")];
        }
        // REST services: SES v2 sends through one path.
        let path = self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| {
            rest.find('/').map_or("/", |i| &rest[i..])
        });
        match (self.method.as_str(), path.split('?').next().unwrap_or(path)) {
            ("POST", "/v2/email/outbound-emails") => vec!["ses:SendEmail".to_string()],
            (method, path) => vec![format!("unmapped:{method} {path}")],
        }
    }
}

/// The item-level writes whose partition key IAM's `dynamodb:LeadingKeys` conditions.
const WRITES: [&str; 3] = ["PutItem", "UpdateItem", "DeleteItem"];

/// How a recorded write names the partition key it wrote: `dynamodb:PutItem on ACCOUNT#acme`.
const ON: &str = " on ";

/// The partition key (`pk`) of a PutItem's `Item`, or of a request's `Key`.
fn leading_key(request: &serde_json::Value) -> Option<String> {
    request["Item"]["pk"]["S"]
        .as_str()
        .or_else(|| request["Key"]["pk"]["S"].as_str())
        .map(str::to_string)
}

/// `TransactWriteItems` is authorised item by item, each on its own key.
fn transaction_actions(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Transaction {
        #[serde(rename = "TransactItems", default)]
        items: Vec<std::collections::HashMap<String, serde_json::Value>>,
    }
    let tx: Transaction = serde_json::from_slice(body).unwrap_or(Transaction { items: Vec::new() });
    tx.items
        .iter()
        .flat_map(|item| item.iter())
        .flat_map(|(kind, request)| {
            let action = match kind.as_str() {
                "Put" => "dynamodb:PutItem".to_string(),
                "Update" => "dynamodb:UpdateItem".to_string(),
                "Delete" => "dynamodb:DeleteItem".to_string(),
                "ConditionCheck" => "dynamodb:ConditionCheckItem".to_string(),
                other => format!("dynamodb:{other}"),
            };
            let keyed = leading_key(request).map(|pk| format!("{action}{ON}{pk}"));
            keyed.into_iter().chain([action])
        })
        .collect()
}

/// `infra/template.yaml` as the repository has it.
pub fn template() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Panics naming what `used` needs that `resource`'s policies do not
/// grant: an action, or a write on a partition key outside the
/// `dynamodb:LeadingKeys` its grants are conditioned on.
pub fn assert_granted(resource: &str, used: &BTreeSet<String>) {
    let template = template();
    let granted = granted_actions(&template, resource);
    let keys = granted_leading_keys(&template, resource);
    let denied: Vec<&String> = used
        .iter()
        .filter(|u| match u.split_once(ON) {
            None => !granted.contains(*u),
            Some((action, pk)) => !keys
                .get(action)
                .is_some_and(|patterns| patterns.as_ref().is_none_or(|p| p.iter().any(|p| glob(p, pk)))),
        })
        .collect();
    assert!(
        denied.is_empty(),
        "{resource}'s policy lacks {denied:?}: a deployed function would get AccessDenied (it grants {granted:?}, on keys {keys:?})"
    );
}

/// For each item-level DynamoDB action `resource` is granted: `None` when a
/// grant has no `dynamodb:LeadingKeys` condition (any key), else the key
/// patterns its grants allow, together.
pub fn granted_leading_keys(
    template: &str,
    resource: &str,
) -> std::collections::BTreeMap<String, Option<BTreeSet<String>>> {
    let mut keys: std::collections::BTreeMap<String, Option<BTreeSet<String>>> = Default::default();
    let statements = policy_blocks(template, resource).into_iter().flat_map(statements_in);
    for (actions, patterns) in statements {
        for action in actions.into_iter().filter(|a| a.starts_with("dynamodb:")) {
            let entry = keys.entry(action).or_insert_with(|| Some(BTreeSet::new()));
            match (&patterns, entry.as_mut()) {
                (None, _) => *entry = None,
                (Some(p), Some(all)) => all.extend(p.iter().cloned()),
                (Some(_), None) => {}
            }
        }
    }
    keys
}

/// Each statement of a block: its actions and, when it has one, its
/// `dynamodb:LeadingKeys` condition's patterns.
fn statements_in(block: &str) -> Vec<(Vec<String>, Option<Vec<String>>)> {
    let mut out: Vec<(Vec<String>, Option<Vec<String>>)> = Vec::new();
    let mut lines = block.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("- Sid:") || t.starts_with("- Effect:") {
            out.push((Vec::new(), None));
        }
        let Some(current) = out.last_mut() else { continue };
        let field = t.strip_prefix("- ").unwrap_or(t);
        let list = |value: &str, lines: &mut std::iter::Peekable<std::str::Lines<'_>>| -> Vec<String> {
            let value = value.trim();
            if value.is_empty() {
                let mut items = Vec::new();
                while let Some(item) = lines.peek().and_then(|l| l.trim().strip_prefix("- ")) {
                    items.push(item.trim().trim_matches('"').to_string());
                    lines.next();
                }
                items
            } else if let Some(items) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                items
                    .split(',')
                    .map(|a| a.trim().trim_matches('"').to_string())
                    .filter(|a| !a.is_empty())
                    .collect()
            } else {
                vec![value.trim_matches('"').to_string()]
            }
        };
        if let Some(v) = field.strip_prefix("Action:") {
            current.0 = list(v, &mut lines);
        } else if let Some(v) = field.strip_prefix("dynamodb:LeadingKeys:") {
            current.1 = Some(list(v, &mut lines));
        }
    }
    out
}

/// IAM's `StringLike`: `*` matches any run of characters, `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .any(|i| glob(&pattern[1..], &text[i..])),
        Some('?') => text
            .chars()
            .next()
            .is_some_and(|c| glob(&pattern[1..], &text[c.len_utf8()..])),
        Some(p) => text.starts_with(p) && glob(&pattern[p.len_utf8()..], &text[p.len_utf8()..]),
    }
}

/// The actions `resource`'s policies grant in the template: its inline
/// statements and the managed policies of the template it names with `!Ref`.
pub fn granted_actions(template: &str, resource: &str) -> BTreeSet<String> {
    policy_blocks(template, resource)
        .into_iter()
        .flat_map(actions_in)
        .collect()
}

/// `resource`'s own block and those of the managed policies it names with `!Ref`.
fn policy_blocks<'a>(template: &'a str, resource: &str) -> Vec<&'a str> {
    let block = resource_block(template, resource).unwrap_or_else(|| panic!("no resource {resource} in the template"));
    let mut blocks = vec![block];
    for line in block.lines() {
        if let Some(name) = line.trim().strip_prefix("- !Ref ") {
            if let Some(policy) = resource_block(template, name.trim()) {
                if policy.contains("Type: AWS::IAM::ManagedPolicy") {
                    blocks.push(policy);
                }
            }
        }
    }
    blocks
}

/// The lines of a top-level resource (`  Name:` under `Resources:`), up to the next one.
fn resource_block<'a>(template: &'a str, name: &str) -> Option<&'a str> {
    let header = format!("\n  {name}:\n");
    let start = template.find(&header)? + header.len();
    let rest = &template[start..];
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| {
            let line = &rest[i..];
            let indent = line.len() - line.trim_start_matches(' ').len();
            indent <= 2 && !line.trim().is_empty() && !line.trim_start().starts_with('#')
        })
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The actions a block's statements grant; DynamoDB's Query and Scan as
/// `dynamodb:Query@table` or `dynamodb:Query@index/<name>`, by the
/// statement's resources, as `recorded_actions` names them.
fn actions_in(block: &str) -> BTreeSet<String> {
    let mut granted = BTreeSet::new();
    let (mut actions, mut resources) = (Vec::new(), Vec::new());
    let mut flush = |actions: &mut Vec<String>, resources: &mut Vec<String>| {
        for action in actions.drain(..) {
            if action == "dynamodb:Query" || action == "dynamodb:Scan" {
                granted.extend(
                    resources
                        .iter()
                        .filter_map(|r| table_part(r))
                        .map(|on| format!("{action}@{on}")),
                );
            } else {
                granted.insert(action);
            }
        }
        resources.clear();
    };
    let mut lines = block.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.starts_with("- Sid:") || line.starts_with("- Effect:") {
            flush(&mut actions, &mut resources);
        }
        let field = line.strip_prefix("- ").unwrap_or(line);
        let (list, value) = if let Some(v) = field.strip_prefix("Action:") {
            (&mut actions, v.trim())
        } else if let Some(v) = field.strip_prefix("Resource:") {
            (&mut resources, v.trim())
        } else {
            continue;
        };
        if value.is_empty() {
            // A block list on the following, deeper lines.
            while let Some(item) = lines.peek().and_then(|l| l.trim().strip_prefix("- ")) {
                list.push(item.trim().to_string());
                lines.next();
            }
        } else if let Some(items) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            list.extend(items.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()));
        } else {
            list.push(value.to_string());
        }
    }
    flush(&mut actions, &mut resources);
    granted
}

/// `table` or `index/<name>` for a resource of the template's table.
fn table_part(resource: &str) -> Option<String> {
    if !resource.contains("Table.Arn") {
        return None;
    }
    match resource.split_once("/index/") {
        Some((_, index)) => Some(format!("index/{}", index.trim_end_matches('"'))),
        None => Some("table".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - !Ref MailPolicy
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:PutItem]
              Resource: !GetAtt Table.Arn
            - Sid: Indexes
              Effect: Allow
              Action: dynamodb:Query
              Resource:
                - !Sub \"${Table.Arn}/index/due\"
            - Effect: Allow
              Action: events:PutEvents
            - Effect: Allow
              Action:
                - states:StopExecution
                - ssm:GetParameter
  MailPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: ses:SendEmail
  Other:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Action: dynamodb:Scan
              Resource: !GetAtt Table.Arn
";

    #[test]
    fn a_functions_grants_are_its_statements_and_the_managed_policies_it_names() {
        let granted: Vec<String> = granted_actions(TEMPLATE, "Fn").into_iter().collect();
        assert_eq!(
            granted,
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query@index/due",
                "events:PutEvents",
                "ses:SendEmail",
                "ssm:GetParameter",
                "states:StopExecution"
            ]
        );
        assert_eq!(
            granted_actions(TEMPLATE, "Other").into_iter().collect::<Vec<_>>(),
            ["dynamodb:Scan@table"]
        );
    }

    #[test]
    fn a_transaction_is_the_actions_of_its_items_each_on_its_key() {
        let body = br#"{"TransactItems": [{"Put": {"Item": {"pk": {"S": "ACCOUNT#a"}}}}, {"ConditionCheck": {}}, {"Update": {"Key": {"pk": {"S": "DEDUPE#a"}}}}]}"#;
        assert_eq!(
            transaction_actions(body),
            [
                "dynamodb:PutItem on ACCOUNT#a",
                "dynamodb:PutItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:UpdateItem on DEDUPE#a",
                "dynamodb:UpdateItem"
            ]
        );
    }

    const KEYED: &str = "Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: Reads
              Effect: Allow
              Action: dynamodb:GetItem
              Resource: !GetAtt Table.Arn
            - Sid: Writes
              Effect: Allow
              Action: [dynamodb:PutItem, dynamodb:DeleteItem]
              Resource: !GetAtt Table.Arn
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys: [\"ACCOUNT#*\", \"SES#STREAM\"]
            - Sid: More
              Effect: Allow
              Action: dynamodb:PutItem
              Resource: !GetAtt Table.Arn
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys:
                    - \"SEND#*\"
";

    #[test]
    fn writes_are_granted_only_on_the_keys_their_conditions_name() {
        let keys = granted_leading_keys(KEYED, "Fn");
        let put = keys["dynamodb:PutItem"].clone().unwrap();
        assert_eq!(
            put.into_iter().collect::<Vec<_>>(),
            ["ACCOUNT#*", "SEND#*", "SES#STREAM"]
        );
        assert_eq!(keys["dynamodb:GetItem"], None, "no condition: any key");
        assert!(glob("ACCOUNT#*", "ACCOUNT#acme") && !glob("ACCOUNT#*", "DEDUPE#acme"));
        assert!(glob("SES#STREAM", "SES#STREAM") && !glob("SES#STREAM", "SES#STREAMS"));
        assert!(glob("SEND#weekly-digest:*", "SEND#weekly-digest:x") && !glob("SEND#weekly-digest:*", "SEND#x"));
    }
}
