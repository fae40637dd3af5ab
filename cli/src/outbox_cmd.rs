//! `milepost outbox`: the emails the local emulator's SES accepted, as a
//! table, as JSON, or saved as HTML files to open in a browser.

use std::path::Path;

pub use milepost_local::outbox::EmulatorEmail;

pub async fn fetch() -> anyhow::Result<Vec<EmulatorEmail>> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| {
        anyhow::anyhow!(
            "AWS_ENDPOINT_URL is not set: the outbox is the local emulator's (source .milepost-local.env); \
             on AWS, SES delivers the mail and the escalation log records it (milepost accounts show)"
        )
    })?;
    Ok(milepost_local::outbox::sent_emails(&endpoint).await?)
}

/// One line per email: number, recipients, subject.
pub fn render(emails: &[EmulatorEmail]) -> String {
    let mut out = format!("{} email(s) sent\n", emails.len());
    let width = emails.iter().map(|e| e.to.join(", ").len()).max().unwrap_or(0).min(48);
    for (n, e) in emails.iter().enumerate() {
        out.push_str(&format!("{:>4}  {:<width$}  {}\n", n + 1, e.to.join(", "), e.subject));
    }
    out
}

/// Writes each email's HTML to `dir` as `NNNN.html`; returns how many.
pub fn save(emails: &[EmulatorEmail], dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    for (n, e) in emails.iter().enumerate() {
        std::fs::write(dir.join(format!("{:04}.html", n + 1)), &e.html)?;
    }
    Ok(emails.len())
}
