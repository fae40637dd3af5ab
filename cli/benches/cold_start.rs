//! `make bench`: the ingest function's cold start and size.
//!
//! Init is timed from spawning the process to its first request to the Lambda
//! runtime API (`GET .../invocation/next`), served here by a stub on a
//! loopback port, against a hello-world `lambda_runtime` binary built with
//! the same profile. Expects release builds of both (`make bench` makes them).
//! Prints figures; targets are stated beside them, not asserted. The same
//! figures go to target/bench/cold-start.json.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use milepost_local::MotoServer;

const RUNS: usize = 41;

/// Where distributions keep all their trust roots in one file: Amazon Linux
/// (Lambda's provided.al2023) and Fedora, then Debian and Ubuntu.
const CA_BUNDLES: [&str; 2] = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"];

fn release_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release")
}

/// The environment Lambda gives every function, pointing at the stub.
fn lambda_env(runtime_api: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "ingest".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
    ]
}

/// Time from spawn to the first runtime-API request.
fn init_time(binary: &Path, extra_env: &[(&str, String)]) -> Duration {
    let stub = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    stub.set_nonblocking(true).expect("non-blocking listener");
    let api = stub.local_addr().expect("bound").to_string();
    let started = Instant::now();
    let mut child: Child = Command::new(binary)
        .env_clear()
        .envs(lambda_env(&api))
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let elapsed = loop {
        match stub.accept() {
            Ok(_) => break started.elapsed(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait().expect("child status") {
                    panic!("{} exited during init ({status})", binary.display());
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no runtime-API request in 30 s"
                );
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => panic!("stub: {e}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn median_init(binary: &Path, extra_env: &[(&str, String)]) -> Duration {
    init_time(binary, extra_env); // warm the page cache
    let mut times: Vec<Duration> = (0..RUNS).map(|_| init_time(binary, extra_env)).collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A moto server holding the two webhook secrets as SSM parameters, as production has them.
fn moto_with_secrets() -> MotoServer {
    let moto = MotoServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config().await);
        for (name, value) in [
            ("/milepost/webhook", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("/milepost/segment", "segment-shared-secret"),
        ] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .expect("moto stores the parameter");
        }
    });
    moto
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"cold_start".contains(a.as_str()))
    {
        return; // `cargo bench -- <filter>` for another section
    }
    let release = release_dir();
    let ingest = release.join("ingest");
    let hello = release.join("examples/hello_runtime");
    for binary in [&ingest, &hello] {
        if !binary.exists() {
            eprintln!(
                "{} is missing: `make bench` builds it (cargo build --release -p ingest --bin ingest --example hello_runtime)",
                binary.display()
            );
            std::process::exit(1);
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(f64::NAN, |m| m.len() as f64 / (1024.0 * 1024.0));
    println!("ingest cold start (spawn to first runtime-API request, median of {RUNS}):");
    let baseline = median_init(&hello, &[]);
    println!("  hello-world lambda_runtime      {:>7.2} ms", ms(baseline));
    let table = [
        ("MILEPOST_TABLE", "milepost".to_string()),
        ("MILEPOST_BUS", "milepost".to_string()),
    ];
    let mut local = table.to_vec();
    local.push(("MILEPOST_LOCAL", "1".into()));
    let own = median_init(&ingest, &local);
    println!(
        "  ingest, secrets from the env    {:>7.2} ms   ratio {:.2}  (the built-in AWS roots; the machine's CA directory set)",
        ms(own),
        ms(own) / ms(baseline)
    );
    // As on Lambda (provided.al2023 keeps its trust roots in one file, and
    // the template points SSL_CERT_FILE at it): one bundle, no directory.
    let bundle = CA_BUNDLES.iter().find(|p| Path::new(p).exists());
    let one_bundle = |roots: &str| {
        bundle.map(|file| {
            let mut env = local.clone();
            env.push(("SSL_CERT_FILE", file.to_string()));
            env.push(("SSL_CERT_DIR", String::new()));
            env.push(("MILEPOST_TLS_ROOTS", roots.to_string()));
            (median_init(&ingest, &env), *file)
        })
    };
    let own_bundle = one_bundle("aws").map(|(init, file)| {
        println!(
            "  ingest, one CA bundle           {:>7.2} ms   ratio {:.2}  [target <= 2.0]  (as deployed: TlsTrustRoots=aws, SSL_CERT_FILE={file})",
            ms(init),
            ms(init) / ms(baseline)
        );
        init
    });
    let system_bundle = one_bundle("system").map(|(init, file)| {
        println!(
            "  ingest, system roots, one bundle{:>7.2} ms   ratio {:.2}  (TlsTrustRoots=system: every root of {file} decoded)",
            ms(init),
            ms(init) / ms(baseline)
        );
        init
    });
    let mut system_dir = local.clone();
    system_dir.push(("MILEPOST_TLS_ROOTS", "system".into()));
    let system_dir = median_init(&ingest, &system_dir);
    println!(
        "  ingest, system roots, CA dir    {:>7.2} ms   ratio {:.2}  (TlsTrustRoots=system, the machine's CA directory, every file)",
        ms(system_dir),
        ms(system_dir) / ms(baseline)
    );
    let moto = moto_with_secrets();
    let mut ssm = table.to_vec();
    ssm.push(("AWS_ENDPOINT_URL", moto.endpoint.clone()));
    ssm.push(("MILEPOST_WEBHOOK_SECRET_PARAM", "/milepost/webhook".into()));
    ssm.push(("MILEPOST_SEGMENT_SECRET_PARAM", "/milepost/segment".into()));
    let with_ssm = median_init(&ingest, &ssm);
    println!(
        "  ingest, secrets from SSM (moto) {:>7.2} ms   ratio {:.2}  (two GetParameter calls, in parallel, to a local emulator)",
        ms(with_ssm),
        ms(with_ssm) / ms(baseline)
    );
    println!(
        "  release binary size: ingest {:.1} MiB, hello-world {:.1} MiB",
        size(&ingest),
        size(&hello)
    );
    let mut figures = serde_json::json!([
        { "name": "hello-world init", "value": ms(baseline), "unit": "ms", "target": "" },
        { "name": "ingest init, secrets from the env", "value": ms(own), "unit": "ms", "target": "" },
        { "name": "ingest init / hello-world init", "value": ms(own) / ms(baseline), "unit": "x", "target": "" },
        { "name": "ingest init, secrets from SSM (moto)", "value": ms(with_ssm), "unit": "ms", "target": "" },
        { "name": "ingest init, system roots, CA directory", "value": ms(system_dir), "unit": "ms", "target": "" },
        { "name": "ingest binary size", "value": size(&ingest), "unit": "MiB", "target": "" },
        { "name": "ingest binary bytes", "value": std::fs::metadata(&ingest).map_or(f64::NAN, |m| m.len() as f64), "unit": "bytes", "target": "" },
    ]);
    if let Some(init) = own_bundle {
        let list = figures.as_array_mut().expect("a list");
        list.push(
            serde_json::json!({ "name": "ingest init, one CA bundle", "value": ms(init), "unit": "ms", "target": "" }),
        );
        list.push(serde_json::json!({ "name": "ingest init / hello-world init, one CA bundle", "value": ms(init) / ms(baseline), "unit": "x", "target": "<= 2.0" }));
    }
    if let Some(init) = system_bundle {
        let list = figures.as_array_mut().expect("a list");
        list.push(serde_json::json!({ "name": "ingest init / hello-world init, system roots, one CA bundle", "value": ms(init) / ms(baseline), "unit": "x", "target": "" }));
    }
    let dir = release.join("../bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("cold-start.json"),
        serde_json::to_string_pretty(&figures).unwrap(),
    );
}
