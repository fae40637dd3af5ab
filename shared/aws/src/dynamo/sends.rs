//! The escalation log, the ledger of email sends and the mail provider's receipts.

use super::*;

#[async_trait]
impl EscalationLog for DynamoStore {
    async fn append_log(&self, entry: &EscalationLogEntry) -> StoreResult<bool> {
        let item = HashMap::from([("item".to_string(), to_attr(entry)?)]);
        self.put(item, account_pk(&entry.account_id), &format!("LOG#{}", entry.key), true)
            .await
    }

    async fn log_of(&self, account: &AccountId) -> StoreResult<Vec<EscalationLogEntry>> {
        let mut entries: Vec<EscalationLogEntry> = self
            .query_all(account_pk(account), "LOG#")
            .await?
            .iter()
            .map(from_item)
            .collect::<StoreResult<_>>()?;
        entries.sort_by_key(|e| e.at);
        Ok(entries)
    }
}

/// How long a sent email's copy is kept: a renewal cycle and a quarter.
const SENT_EMAIL_DAYS: i64 = 456;

#[async_trait]
impl SendLedger for DynamoStore {
    async fn archive_email(&self, sent: &milepost_domain::SentEmail, html: &str) -> StoreResult<()> {
        let expires = AttributeValue::N(
            (sent.date + chrono::Duration::days(SENT_EMAIL_DAYS))
                .timestamp()
                .to_string(),
        );
        // The copy first, then each account's line: a listed email can always be opened.
        let body = HashMap::from([
            ("item".to_string(), to_attr(sent)?),
            ("html".to_string(), s(html)),
            ("expires_at".to_string(), expires.clone()),
        ]);
        self.put(body, sent_email_pk(&sent.key), SENT_EMAIL_SK, true).await?;
        for account in &sent.accounts {
            let line = HashMap::from([
                ("item".to_string(), to_attr(sent)?),
                ("expires_at".to_string(), expires.clone()),
            ]);
            self.put(line, account_pk(account), &sent_email_line_sk(&sent.key), true)
                .await?;
        }
        Ok(())
    }

    async fn archived_email(&self, key: &str) -> StoreResult<Option<(milepost_domain::SentEmail, String)>> {
        let Some(item) = self.get(sent_email_pk(key), SENT_EMAIL_SK).await? else {
            return Ok(None);
        };
        let html = item
            .get("html")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| backend("a sent email's copy without its HTML"))?
            .clone();
        Ok(Some((from_item(&item)?, html)))
    }

    async fn send_record(&self, key: &SendKey) -> StoreResult<Option<SendRecord>> {
        self.get(format!("SEND#{key}"), "SEND")
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn claim_send(&self, key: &SendKey, claim: &SendClaim) -> StoreResult<Option<SendRecord>> {
        let item = HashMap::from([("item".to_string(), to_attr(&SendRecord::claimed(claim))?)]);
        if self.put(item, format!("SEND#{key}"), "SEND", true).await? {
            return Ok(None);
        }
        let existing = self
            .get(format!("SEND#{key}"), "SEND")
            .await?
            .ok_or(StoreError::Conflict)?;
        let existing: SendRecord = from_item(&existing)?;
        // Our own claim, written by a try whose answer was lost: still ours.
        Ok((!existing.is_held_by(claim)).then_some(existing))
    }

    async fn settle_send(&self, key: &SendKey, record: &SendRecord) -> StoreResult<()> {
        if matches!(record, SendRecord::Unknown { .. }) {
            // Listed first: a listed key whose record is not unknown is only dropped.
            self.put(HashMap::new(), UNSETTLED_PK.to_string(), key, false).await?;
        }
        let item = HashMap::from([("item".to_string(), to_attr(record)?)]);
        self.put(item, format!("SEND#{key}"), "SEND", false).await?;
        Ok(())
    }

    async fn replace_send(&self, key: &SendKey, expected: &SendRecord, record: &SendRecord) -> StoreResult<bool> {
        let pk = format!("SEND#{key}");
        let mut item = HashMap::from([("item".to_string(), to_attr(record)?)]);
        item.insert("pk".into(), s(pk));
        item.insert("sk".into(), s("SEND"));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#item = :expected")
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":expected", to_attr(expected)?)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    async fn unsettled_sends(&self, limit: usize) -> StoreResult<Vec<SendKey>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(UNSETTLED_PK))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        let items = out.items.unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(SendKey::new))
            .collect())
    }

    async fn forget_unsettled(&self, key: &SendKey) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(UNSETTLED_PK))
            .key("sk", s(key.as_str()))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(())
    }

    async fn release_send(&self, key: &SendKey, claim: &SendClaim) -> StoreResult<()> {
        let sending = to_attr(&SendRecord::claimed(claim))?;
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("SEND#{key}")))
            .key("sk", s("SEND"))
            .condition_expression("#item = :sending")
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":sending", sending)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(refused(e.into_service_error())),
        }
    }
}

#[async_trait]
impl SendReceipts for DynamoStore {
    async fn record_receipt(&self, receipt: &SendReceipt) -> StoreResult<()> {
        let mut item = HashMap::from([("item".to_string(), to_attr(receipt)?)]);
        let expires = receipt.mail_at + chrono::Duration::days(RECEIPT_DAYS);
        item.insert("expires_at".into(), AttributeValue::N(expires.timestamp().to_string()));
        // The first receipt of an email stands; a later one (Delivery after Send) adds nothing.
        self.put(item, format!("RECEIPT#{}", receipt.tag), "RECEIPT", true)
            .await?;
        let at = time_key(receipt.mail_at);
        let moved = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(STREAM_PK))
            .item("sk", s(STREAM_PK))
            .item("at", s(at.clone()))
            .condition_expression("attribute_not_exists(pk) OR #at < :at")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":at", s(at))
            .send()
            .await;
        match moved {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()), // the stream is already further on
            Err(e) => Err(refused(e.into_service_error())),
        }
    }

    async fn receipt(&self, tag: &str) -> StoreResult<Option<SendReceipt>> {
        self.get(format!("RECEIPT#{tag}"), "RECEIPT")
            .await?
            .map(|i| from_item(&i))
            .transpose()
    }

    async fn stream_watermark(&self) -> StoreResult<Option<Timestamp>> {
        let Some(item) = self.get(STREAM_PK.to_string(), STREAM_PK).await? else {
            return Ok(None);
        };
        let at = item
            .get("at")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| backend("a watermark without its time"))?;
        chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| Some(t.to_utc()))
            .map_err(|e| backend(format!("a watermark of {at:?}: {e}")))
    }
}
