#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! HTTPS and mutual TLS on the API, with certificates made for the test.
use rcgen::{CertificateParams, KeyPair};
use xaynet_test_support::test_settings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (ca, server_pem, server_key_pem) = xaynet_test_support::tls::private_ca();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["participant".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();

    let mut settings = test_settings(&dir.path().join("data"), 4);
    settings.api.tls_certificate = Some(write("server.pem", server_pem));
    settings.api.tls_key = Some(write("server.key", server_key_pem));
    settings.api.tls_client_auth = Some(write("ca.pem", ca.pem()));
    let running = xaynet_server::server::start(settings).await.unwrap();
    let url = format!("https://localhost:{}/params", running.addr.port());
    let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap();

    // Without a client certificate the handshake is refused.
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(root.clone())
        .build()
        .unwrap();
    assert!(anonymous.get(&url).send().await.is_err());
    // With one, the v1 API answers.
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", client.pem(), client_key.serialize_pem()).as_bytes(),
    )
    .unwrap();
    let mtls = reqwest::Client::builder()
        .add_root_certificate(root)
        .identity(identity)
        .build()
        .unwrap();
    let r = mtls.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let params = xaynet_core::RoundParameters::from_bincode(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(params.model_length, 4);
    // Plain HTTP on the TLS port does not get through.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/params", running.addr.port()))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );
    running.stop().await;
}

#[test]
fn tls_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[api]\ntls_certificate = \"/nonexistent/cert.pem\"\n",
    )
    .unwrap();
    let e = xaynet_server::settings::Settings::load(Some(&path))
        .unwrap_err()
        .to_string();
    assert!(e.contains("api.tls_key"), "{e}");
    std::fs::write(
        &path,
        "[api]\ntls_certificate = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
    )
    .unwrap();
    let e = xaynet_server::settings::Settings::load(Some(&path))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("api.tls_certificate") && e.contains("not a readable file"),
        "{e}"
    );
}
