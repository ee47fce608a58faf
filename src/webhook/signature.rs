//! Webhook signatures: hex HMAC-SHA256 of the raw body under the shared secret,
//! checked in constant time so a forger learns nothing from response timing.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Whether `hex_signature` is the HMAC-SHA256 of `body` under `secret`.
/// An empty secret verifies nothing: anyone could sign with it.
pub fn verify(secret: &[u8], body: &[u8], hex_signature: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Some(signature) = decode_hex(hex_signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares with `subtle`'s constant-time equality.
    mac.verify_slice(&signature).is_ok()
}

/// The hex HMAC-SHA256 of `body` under `secret`, as a forge would send it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}
