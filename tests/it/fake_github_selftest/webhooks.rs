//! The webhook helper: GitHub's example deliveries rewritten to the test repository
//! (nested repository objects too), signed with HMAC-SHA256, each with its own id.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::fake_github::webhooks::{deliveries, delivery, events, sign};

#[test]
fn deliveries_are_rewritten_to_the_test_repository_and_signed() {
    for event in [
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "status",
        "check_run",
        "check_suite",
        "workflow_run",
        "ping",
    ] {
        assert!(
            events().iter().any(|e| e == event),
            "no examples for {event}"
        );
    }

    let all = deliveries("pull_request", "acme", "widget", "s3cret");
    assert!(all.len() > 10);
    let ids: std::collections::HashSet<&str> = all.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "one delivery id each");
    for d in &all {
        let payload = d.payload();
        assert_eq!(payload["repository"]["full_name"], "acme/widget");
        assert_eq!(payload["repository"]["name"], "widget");
        assert_eq!(payload["repository"]["owner"]["login"], "acme");
        // The PR's own repository objects point at the test repository as well.
        if let Some(base) = payload["pull_request"]["base"]["repo"]["full_name"].as_str() {
            assert_eq!(base, "acme/widget");
        }
        // The signature is GitHub's: sha256=<hex HMAC-SHA256 of the exact body>.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
        mac.update(&d.body);
        let hex = d.signature.strip_prefix("sha256=").expect("sha256= prefix");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        mac.verify_slice(&bytes).expect("the signature verifies");
        assert_eq!(d.signature, sign("s3cret", &d.body));
        let headers = d.headers();
        assert!(headers.contains(&("x-github-event", "pull_request".to_owned())));
        assert!(headers.contains(&("x-github-delivery", d.id.clone())));
    }

    let opened = delivery("pull_request", Some("opened"), "acme", "widget", "s3cret");
    assert_eq!(opened.action.as_deref(), Some("opened"));
    let ping = delivery("ping", None, "acme", "widget", "s3cret");
    assert!(ping.payload()["zen"].is_string());
    assert_ne!(sign("other", &ping.body), ping.signature);
}
