//! The secret redactor: configured values, the environment, common formats.

use forgehand::redact::Redactor;

#[test]
fn configured_values_are_masked_everywhere() {
    let r = Redactor::new(["s3cr3t-forge-token".to_string()]);
    let out = r.redact("token s3cr3t-forge-token and again s3cr3t-forge-token.");
    assert!(!out.contains("s3cr3t-forge-token"), "{out}");
    assert_eq!(out.matches("[REDACTED]").count(), 2);
}

#[test]
fn short_values_are_not_masked_by_value() {
    let r = Redactor::new(["abc".to_string()]);
    assert_eq!(r.redact("abc is fine"), "abc is fine");
}

#[test]
fn secrets_from_the_environment_by_name() {
    let env = [
        ("FORGE_TOKEN".to_string(), "forge-value-123".to_string()),
        ("MY_API_KEY".to_string(), "key-value-456".to_string()),
        ("DB_PASSWORD".to_string(), "pw-value-789".to_string()),
        ("HOME".to_string(), "/home/alice".to_string()),
    ];
    let r = Redactor::with_env(Vec::new(), env);
    let out = r.redact("forge-value-123 key-value-456 pw-value-789 /home/alice");
    assert_eq!(out, "[REDACTED] [REDACTED] [REDACTED] /home/alice");
}

#[test]
fn common_key_formats() {
    let r = Redactor::default();
    let cases = [
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "glpat-abcdefghijklmnopqrst",
        "xoxb-1234567890-abcdefghij",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "sk-abcdefghijklmnopqrstuvwxyz012345",
        "AKIAABCDEFGHIJKLMNOP",
    ];
    for secret in cases {
        let out = r.redact(&format!("value: {secret} end"));
        assert!(!out.contains(secret), "{secret} survived: {out}");
        assert!(out.contains("[REDACTED]") && out.ends_with(" end"), "{out}");
    }
}

#[test]
fn credentials_in_headers_urls_and_assignments() {
    let r = Redactor::default();
    let out = r.redact("Authorization: token abcdef123456");
    assert_eq!(out, "Authorization: token [REDACTED]");
    let out = r.redact("git clone https://bot:hunter2secret@forge.example/o/r.git");
    assert_eq!(
        out,
        "git clone https://bot:[REDACTED]@forge.example/o/r.git"
    );
    let out = r.redact("export FORGE_TOKEN=abcdef123456 next");
    assert_eq!(out, "export FORGE_TOKEN=[REDACTED] next");
    let out = r.redact(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\nBBBB\n-----END OPENSSH PRIVATE KEY-----\nafter",
    );
    assert_eq!(out, "[REDACTED]\nafter");
}

#[test]
fn ordinary_text_is_untouched() {
    let r = Redactor::new(["a-long-secret".to_string()]);
    let text = "CI failed: 2 tests in src/token.rs; see https://ci.example/build/17";
    assert_eq!(r.redact(text), text);
}
