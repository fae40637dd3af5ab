//! The local AWS emulator (moto) for tests: started on a free loopback port,
//! stopped on drop, with an SDK configuration pointing at it.

/// The Python `make test` installs the test tools into (`.venv`), or
/// `MILEPOST_PYTHON`.
pub fn venv_python() -> String {
    std::env::var("MILEPOST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python").to_string())
}

/// A harness script under `tests/` of the repository.
pub fn harness_script(name: &str) -> String {
    format!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/{}"), name)
}

/// A moto server (the local AWS emulator) on a free loopback port, stopped on drop.
/// `make test` installs moto into `.venv`; it runs through `tests/moto_serial.py`,
/// one request at a time, because threaded moto does not make conditional
/// writes atomic. `MILEPOST_PYTHON` overrides the interpreter.
pub struct MotoServer {
    child: std::process::Child,
    pub endpoint: String,
    /// Where moto's recorder writes the requests made while it is on (see `iam`).
    pub(crate) recording: std::path::PathBuf,
}

impl MotoServer {
    pub fn start() -> MotoServer {
        let python = venv_python();
        let script = harness_script("moto_serial.py");
        assert!(
            std::path::Path::new(&python).exists(),
            "{python} not found: run `make test`, which installs moto into .venv"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let recording = std::env::temp_dir().join(format!("milepost-moto-{port}-requests.jsonl"));
        let _ = std::fs::remove_file(&recording);
        let child = std::process::Command::new(&python)
            .args([script.as_str(), "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto with {python}: {e}"));
        let server = MotoServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            recording,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    /// SDK configuration pointing at this server, with dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "milepost-tests",
            ))
            .load()
            .await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}
