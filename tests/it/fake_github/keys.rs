//! RSA keys for the GitHub App tests and the JWTs signed with them.
//!
//! The keys are generated when a test first needs them, with `openssl genrsa` and
//! `openssl rsa -pubout` (no key is committed: a private key in the repository, even a
//! test one, is what secret scanners exist to flag). The private half is PKCS#1
//! (`BEGIN RSA PRIVATE KEY`), the format of the `.pem` file GitHub hands out for an app,
//! so the client is tested with what it will read in production.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A key pair in PEM.
#[derive(Debug, Clone)]
pub struct TestKey {
    /// PKCS#1, as GitHub's downloaded app keys.
    pub private_pem: String,
    /// SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`), what the fake verifies JWTs with.
    pub public_pem: String,
}

static APP_KEY: LazyLock<TestKey> = LazyLock::new(TestKey::generate);
static OTHER_KEY: LazyLock<TestKey> = LazyLock::new(TestKey::generate);

/// The app's key, shared by all tests of one run (generating one takes a moment).
pub fn app_key() -> &'static TestKey {
    &APP_KEY
}

/// Another key, for JWTs the fake must refuse.
pub fn other_key() -> &'static TestKey {
    &OTHER_KEY
}

impl TestKey {
    /// A fresh 2048-bit key pair from `openssl`.
    pub fn generate() -> Self {
        let private = Command::new("openssl")
            .args(["genrsa", "-traditional", "2048"])
            .stderr(Stdio::null())
            .output()
            .expect("running openssl genrsa");
        assert!(private.status.success(), "openssl genrsa failed");
        let private_pem = String::from_utf8(private.stdout).expect("PEM is ASCII");
        let mut child = Command::new("openssl")
            .args(["rsa", "-pubout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running openssl rsa -pubout");
        child
            .stdin
            .take()
            .expect("openssl stdin")
            .write_all(private_pem.as_bytes())
            .expect("writing the key to openssl");
        let public = child.wait_with_output().expect("openssl rsa -pubout");
        assert!(public.status.success(), "openssl rsa -pubout failed");
        Self {
            private_pem,
            public_pem: String::from_utf8(public.stdout).expect("PEM is ASCII"),
        }
    }

    /// Writes the private key to `dir/app.pem` (mode 0600, as one would keep it) and
    /// returns the path, for `private_key_file`.
    pub fn write_private(&self, dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("app.pem");
        std::fs::write(&path, &self.private_pem).expect("writing the app key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("restricting the app key");
        path
    }

    /// An RS256 JWT with these claims, signed with this key.
    pub fn sign(&self, claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).expect("test key");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("signing")
    }

    /// The JWT an app client should send: `iss` the app id, issued 60 s ago (GitHub's
    /// advice against clock drift), expiring in 9 minutes.
    pub fn app_jwt(&self, app_id: u64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(&json!({"iat": now - 60, "exp": now + 540, "iss": app_id.to_string()}))
    }
}
