//! Mailers without SES: one that writes an outbox of `.eml` files, one that
//! keeps emails in memory for tests (and can be told to fail).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use milepost_app::email::to_eml;
use milepost_app::ports::{Mailer, SendError};
use milepost_domain::OutgoingEmail;

/// Writes each email to `dir` as `NNNNNN-<kind>-<account>.eml` plus the same
/// name with `.html` (the HTML part, to open in a browser).
pub struct OutboxMailer {
    dir: PathBuf,
    sent: Mutex<u64>,
}

impl OutboxMailer {
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(OutboxMailer {
            dir,
            sent: Mutex::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn sent(&self) -> u64 {
        *self.sent.lock().expect("outbox lock")
    }
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let eml = to_eml(email).map_err(|e| SendError::Transient(e.to_string()))?;
        let mut sent = self.sent.lock().expect("outbox lock");
        *sent += 1;
        let stem = format!(
            "{:06}-{}-{}",
            *sent,
            email.kind.as_str(),
            file_safe(email.account_id.as_str())
        );
        let write = |ext: &str, content: &str| std::fs::write(self.dir.join(format!("{stem}.{ext}")), content);
        write("eml", &eml).map_err(|e| SendError::Transient(e.to_string()))?;
        write("html", &email.html).map_err(|e| SendError::Transient(e.to_string()))?;
        Ok(stem)
    }
}

/// Keeps sent emails in memory. Addresses can be set to fail: transiently
/// (throttling) a number of times, or permanently (rejected address).
#[derive(Default)]
pub struct MemoryMailer {
    state: Mutex<MemoryMailerState>,
}

#[derive(Default)]
struct MemoryMailerState {
    sent: Vec<OutgoingEmail>,
    transient_failures: HashMap<String, u32>,
    throttled: HashMap<String, u32>,
    unanswered: HashMap<String, u32>,
    answers_lost: HashMap<String, u32>,
    rejected: Vec<String>,
    attempts: u64,
}

impl MemoryMailer {
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.state.lock().expect("mailer lock").sent.clone()
    }

    /// Calls to `send`, successful or not.
    pub fn attempts(&self) -> u64 {
        self.state.lock().expect("mailer lock").attempts
    }

    /// The next `times` sends to `address` fail with throttling.
    pub fn fail_transiently(&self, address: &str, times: u32) {
        self.state
            .lock()
            .expect("mailer lock")
            .transient_failures
            .insert(address.to_string(), times);
    }

    /// The next `times` sends to `address` find the sending rate exceeded, as SES answers a burst.
    pub fn throttle(&self, address: &str, times: u32) {
        self.state
            .lock()
            .expect("mailer lock")
            .throttled
            .insert(address.to_string(), times);
    }

    /// The next `times` sends to `address` get no answer (a reset
    /// connection): nothing is sent, and the sender cannot know it.
    pub fn leave_unanswered(&self, address: &str, times: u32) {
        self.state
            .lock()
            .expect("mailer lock")
            .unanswered
            .insert(address.to_string(), times);
    }

    /// The next `times` sends to `address` are taken but their answer is
    /// lost (a reset after SES accepted): sent, and the sender cannot know it.
    pub fn lose_answer(&self, address: &str, times: u32) {
        self.state
            .lock()
            .expect("mailer lock")
            .answers_lost
            .insert(address.to_string(), times);
    }

    /// Every send to `address` is rejected, as SES does for a suppressed address.
    pub fn reject(&self, address: &str) {
        self.state
            .lock()
            .expect("mailer lock")
            .rejected
            .push(address.to_string());
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let mut state = self.state.lock().expect("mailer lock");
        state.attempts += 1;
        for to in &email.to {
            if state.rejected.iter().any(|r| to.email == r.as_str()) {
                return Err(SendError::Permanent("address is on the suppression list".into()));
            }
            if let Some(left) = state.transient_failures.get_mut(to.email.as_str()) {
                if *left > 0 {
                    *left -= 1;
                    return Err(SendError::Transient("service unavailable".into()));
                }
            }
            if let Some(left) = state.unanswered.get_mut(to.email.as_str()) {
                if *left > 0 {
                    *left -= 1;
                    return Err(SendError::Unknown("connection reset before an answer".into()));
                }
            }
            if let Some(left) = state.throttled.get_mut(to.email.as_str()) {
                if *left > 0 {
                    *left -= 1;
                    return Err(SendError::Throttled("maximum sending rate exceeded".into()));
                }
            }
        }
        state.sent.push(email.clone());
        for to in &email.to {
            if let Some(left) = state.answers_lost.get_mut(to.email.as_str()) {
                if *left > 0 {
                    *left -= 1;
                    return Err(SendError::Unknown("connection reset after the request went".into()));
                }
            }
        }
        Ok(format!("memory-{}", state.sent.len()))
    }
}
