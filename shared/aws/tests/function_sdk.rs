//! The functions' SDK configuration (`milepost_aws::lambda::sdk_config`):
//! the trust roots it builds in are the real ones, it reads what Lambda
//! provides from the environment, and a client built on it works. Only one
//! test here sets environment variables, so none reads them half set.

use milepost_aws::lambda::{sdk_config, TrustRoots, AWS_ROOTS_PEM};

/// The base64 bodies of a PEM file's certificates, whitespace removed.
fn bodies(pem: &str) -> Vec<String> {
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|rest| {
            let body = rest.split("-----END CERTIFICATE-----").next().unwrap_or_default();
            body.split_whitespace().collect()
        })
        .collect()
}

#[test]
fn the_built_in_roots_are_amazon_trust_services_as_the_system_bundle_has_them() {
    let ours = bodies(AWS_ROOTS_PEM);
    assert_eq!(ours.len(), 5, "Amazon Root CA 1–4 and Starfield Services Root G2");
    let bundle = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("a system CA bundle (Debian, Ubuntu, Fedora and Amazon Linux have one)");
    let system = bodies(&bundle);
    for (i, cert) in ours.iter().enumerate() {
        assert!(system.contains(cert), "root {i} is not in the system's bundle");
    }
}

#[test]
fn the_trust_roots_setting_takes_aws_or_system_and_refuses_anything_else() {
    assert_eq!(TrustRoots::from_env(None), Ok(TrustRoots::Aws));
    assert_eq!(TrustRoots::from_env(Some("")), Ok(TrustRoots::Aws));
    assert_eq!(TrustRoots::from_env(Some("system")), Ok(TrustRoots::System));
    let refused = TrustRoots::from_env(Some("mozilla")).unwrap_err().to_string();
    assert!(
        refused.contains("MILEPOST_TLS_ROOTS") && refused.contains("mozilla"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_client_on_the_functions_configuration_reaches_dynamodb_with_each_root_setting() {
    let moto = milepost_local::MotoServer::start();
    // What Lambda sets, with the emulator as the endpoint.
    std::env::set_var("AWS_ENDPOINT_URL", &moto.endpoint);
    std::env::set_var("AWS_REGION", "eu-west-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_SESSION_TOKEN", "token");
    for roots in ["aws", "system"] {
        std::env::set_var("MILEPOST_TLS_ROOTS", roots);
        let sdk = sdk_config().await.expect("a configuration");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        client
            .list_tables()
            .send()
            .await
            .unwrap_or_else(|e| panic!("with {roots} roots: {e:?}"));
    }
    std::env::set_var("MILEPOST_TLS_ROOTS", "none");
    assert!(sdk_config().await.is_err(), "an unknown setting stops the cold start");
}
