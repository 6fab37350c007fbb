//! Standard Webhooks signing: `whsec_` secrets and the `webhook-signature`
//! header, `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of every secret.
const PREFIX: &str = "whsec_";

/// A new random secret: `whsec_` and the base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    getrandom::fill(&mut key).expect("the operating system's random source");
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret, or `None` when it is not `whsec_` and
/// base64.
fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
}

/// `v1,<base64 signature>` of one message under one secret.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)?).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per secret, separated by
/// spaces, as during a rotation.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|secret| signature(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `header` carries a valid signature of the message under
/// `secret`, as a receiver checks it.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(expected) = signature(secret, id, timestamp, body) else {
        return false;
    };
    let expected = expected.as_bytes();
    header.split(' ').any(|candidate| {
        let candidate = candidate.as_bytes();
        // Constant time: every byte is compared whatever the first
        // difference.
        candidate.len() == expected.len()
            && candidate
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries.
    #[test]
    fn signs_the_specification_s_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(verify(
            secret,
            id,
            1614265330,
            body,
            "v1,bm9ldHUh v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
        assert!(!verify(
            secret,
            id,
            1614265331,
            body,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (old, new) = (new_secret(), new_secret());
        assert!(old.starts_with("whsec_") && old != new);
        let header = header(&[&new, &old], "msg_1", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&old, "msg_1", 10, b"{}", &header));
        assert!(verify(&new, "msg_1", 10, b"{}", &header));
        assert!(!verify(&new_secret(), "msg_1", 10, b"{}", &header));
    }
}
