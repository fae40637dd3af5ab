//! `milepost parked [--replay]`: events kept for accounts Milepost did not
//! know when they arrived. Onboarding an account (a Segment `group` call)
//! applies its parked events; `--replay` applies those of accounts that exist
//! now but were created otherwise. Parked events expire after 30 days.

use milepost_app::ingest::Ingestion;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParkedAccount {
    pub account_id: String,
    pub parked_events: usize,
    /// Whether the account exists (its events can be replayed).
    pub account_known: bool,
    /// With `--replay`: how many of its events changed something (the rest were duplicates).
    pub replayed: Option<usize>,
}

pub async fn parked(ingestion: &Ingestion, replay: bool) -> anyhow::Result<Vec<ParkedAccount>> {
    let mut out = Vec::new();
    for (account, count) in ingestion.store.parked_accounts().await? {
        let known = ingestion.store.get_account(&account).await?.is_some();
        let replayed = if replay && known {
            Some(ingestion.apply_parked(&account).await?)
        } else {
            None
        };
        out.push(ParkedAccount {
            account_id: account.to_string(),
            parked_events: count,
            account_known: known,
            replayed,
        });
    }
    Ok(out)
}

pub fn render(accounts: &[ParkedAccount]) -> String {
    if accounts.is_empty() {
        return "no parked events\n".to_string();
    }
    let mut out = format!("{:<32}  {:>6}  account\n", "account id", "events");
    for a in accounts {
        let state = match (a.account_known, a.replayed) {
            (true, Some(n)) => format!("known: replayed, {n} applied"),
            (true, None) => "known: replay with --replay".to_string(),
            (false, _) => "unknown: waiting for its group call".to_string(),
        };
        out.push_str(&format!("{:<32}  {:>6}  {state}\n", a.account_id, a.parked_events));
    }
    out
}
