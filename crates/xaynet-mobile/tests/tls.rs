//! `xaynet_ffi_settings_set_root_certificate`: a participant reaches an HTTPS coordinator whose
//! certificate comes from a private CA only when that CA is configured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;

use xaynet_mobile::*;
use xaynet_test_support::test_settings;
use xaynet_test_support::tls::private_ca;

/// A participant for `url` (with `root` trusted, if given) after one tick: whether it learnt
/// the round (i.e. talked to the coordinator).
fn reaches(url: &str, root: Option<&str>) -> bool {
    let url = CString::new(url).unwrap();
    // SAFETY: every pointer comes from this library or lives across the calls.
    unsafe {
        let s = xaynet_ffi_settings_new();
        let k = xaynet_ffi_generate_key_pair();
        assert_eq!(xaynet_ffi_settings_set_url(s, url.as_ptr()), XAYNET_OK);
        assert_eq!(xaynet_ffi_settings_set_keys(s, k), XAYNET_OK);
        if let Some(pem) = root {
            assert_eq!(
                xaynet_ffi_settings_set_root_certificate(s, pem.as_ptr(), pem.len()),
                XAYNET_OK
            );
        }
        let p = xaynet_ffi_participant_new(s);
        assert!(!p.is_null());
        assert!(xaynet_ffi_participant_tick(p) >= 0);
        let mut cfg = XaynetLocalModelConfig {
            data_type: 0,
            len: 0,
        };
        let known = xaynet_ffi_participant_local_model_config(p, &mut cfg) == XAYNET_OK;
        if known {
            assert_eq!(cfg.len, 4);
        }
        xaynet_ffi_participant_destroy(p);
        xaynet_ffi_forget_key_pair(k);
        xaynet_ffi_settings_destroy(s);
        known
    }
}

#[test]
fn private_ca_root_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, server_pem, server_key_pem) = private_ca();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, server_pem).unwrap();
    std::fs::write(&key, server_key_pem).unwrap();
    let mut settings = test_settings(&dir.path().join("data"), 4);
    settings.api.tls_certificate = Some(cert);
    settings.api.tls_key = Some(key);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("https://localhost:{}", running.addr.port());

    assert!(!reaches(&url, None), "an unknown CA must not be trusted");
    assert!(
        reaches(&url, Some(&ca.pem())),
        "the configured CA is trusted"
    );
    runtime.block_on(running.stop());
}
