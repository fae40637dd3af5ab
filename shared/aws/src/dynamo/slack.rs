//! Tasks' Slack messages: a record per task and audience under the task's
//! `SLACK#<task>` partition; those owed something in the `SLACK#DUE`
//! partition of the `due` index, by when.

use milepost_app::ports::SlackPostStore;
use milepost_domain::slack::{PostState, SlackPost};

use super::*;

/// How long a record is kept once nothing is owed (a task's messages are
/// updated while it lives: longer than any snooze).
const SLACK_KEPT_DAYS: i64 = 120;

impl DynamoStore {
    fn slack_post_item(post: &SlackPost, version: u64) -> StoreResult<Item> {
        let (pk, sk) = (slack_pk(&post.task_id), slack_sk(post.audience.as_str(), post.kind));
        if !key_fits(&pk, &sk) {
            return Err(key_too_long(&pk, &sk));
        }
        let mut stored = post.clone();
        stored.version = version;
        let mut item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("item".to_string(), to_attr(&stored)?),
            ("version".to_string(), AttributeValue::N(version.to_string())),
        ]);
        match &post.state {
            PostState::Due { next_at } => {
                item.insert("due_pk".into(), s(SLACK_DUE_PK));
                item.insert(
                    "due_sk".into(),
                    s(format!(
                        "{}#{}#{}#{}",
                        time_key(*next_at),
                        post.task_id,
                        post.audience.as_str(),
                        post.kind.as_str()
                    )),
                );
            }
            PostState::Shown | PostState::GivenUp { .. } => {
                let expires = chrono::Utc::now() + chrono::Duration::days(SLACK_KEPT_DAYS);
                item.insert(
                    schema::TTL_ATTRIBUTE.into(),
                    AttributeValue::N(expires.timestamp().to_string()),
                );
            }
        }
        Ok(item)
    }

    fn slack_post_from(item: &Item) -> StoreResult<SlackPost> {
        versioned_from(item, |p: &mut SlackPost, v| p.version = v)
    }
}

#[async_trait]
impl SlackPostStore for DynamoStore {
    async fn create_slack_post(&self, post: &SlackPost) -> StoreResult<bool> {
        let item = Self::slack_post_item(post, 1)?;
        self.put(
            item,
            slack_pk(&post.task_id),
            &slack_sk(post.audience.as_str(), post.kind),
            true,
        )
        .await
    }

    async fn slack_posts(&self, task_id: &str) -> StoreResult<Vec<SlackPost>> {
        self.query_all(slack_pk(task_id), SLACK_PREFIX)
            .await?
            .iter()
            .map(Self::slack_post_from)
            .collect()
    }

    async fn update_slack_post(&self, post: &SlackPost) -> StoreResult<u64> {
        let item = Self::slack_post_item(post, post.version + 1)?;
        self.put_on_version(item, post.version).await
    }

    async fn due_slack_posts(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<SlackPost>> {
        self.due_in(SLACK_DUE_PK, now, limit)
            .await?
            .iter()
            .map(Self::slack_post_from)
            .collect()
    }
}
