//! A stand-in for a vendor's API, or a consumer (`tests/slack_standin.py`,
//! `tests/hubspot_standin.py`, `tests/webhook_receiver.py`), on a free
//! loopback port, started for a test: it records every call to a file, one
//! JSON object a line. Stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

pub struct StandIn {
    child: Child,
    pub port: u16,
    record: std::path::PathBuf,
}

impl StandIn {
    /// Starts `tests/<script>` with `--record <file>` and `args`; it prints its port first.
    pub fn start(script: &str, args: &[&str]) -> StandIn {
        let python = crate::venv_python();
        let record = std::env::temp_dir().join(format!(
            "milepost-{}-{}-{}.jsonl",
            script.trim_end_matches(".py"),
            std::process::id(),
            crate::fresh_suffix()
        ));
        let _ = std::fs::remove_file(&record);
        let mut child = Command::new(&python)
            .arg(crate::harness_script(script))
            .arg("--record")
            .arg(&record)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {script} with {python} (make test installs it): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{script} printed {line:?}, not its port"));
        StandIn { child, port, record }
    }

    /// Its address, as a base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every call it recorded, in order.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a recorded call"))
            .collect()
    }

    /// What `tests/<check>` says of the recorded calls; panics when it refuses them.
    pub fn judged_by(&self, check: &str) -> String {
        let out = Command::new(crate::venv_python())
            .arg(crate::harness_script(check))
            .arg(&self.record)
            .output()
            .expect("the check runs");
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{check} refuses what was sent:\n{said}");
        said
    }

    /// GET `path` of its own (`/_state`, ...), as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        self.request("GET", path, None)
    }

    /// POST `body` to `path` of its own (`/_deals`, ...); its answer, as JSON.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        self.request("POST", path, Some(body))
    }

    fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> serde_json::Value {
        let host = format!("127.0.0.1:{}", self.port);
        let mut stream = std::net::TcpStream::connect(&host).expect("the stand-in answers");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("its answer");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{method} {path}: {answer}"))
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.record);
    }
}
