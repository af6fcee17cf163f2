//! Twilio's webhook signature (`X-Twilio-Signature`): HMAC-SHA1, keyed with the account's auth
//! token, over the full public URL (query string included) followed by every POST parameter
//! sorted by name, each written as name then value; base64 of the digest. Verification is
//! constant-time (`Mac::verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The request header Twilio signs with.
pub const HEADER: &str = "X-Twilio-Signature";

/// `None` only if the key were refused, which HMAC never does (any key length is valid).
fn mac(auth_token: &[u8], url: &str, params: &[(String, String)]) -> Option<HmacSha1> {
    let mut mac = HmacSha1::new_from_slice(auth_token).ok()?;
    mac.update(url.as_bytes());
    // Sorted by name (byte order, i.e. Unix-style case-sensitive); a repeated name keeps its
    // values sorted too, so the order the carrier sent them in does not matter.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    Some(mac)
}

/// The signature Twilio sends for `url` and `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    mac(auth_token.as_bytes(), url, params)
        .map(|mac| STANDARD.encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Whether `signature` (the header's value) is Twilio's signature of `url` and `params`,
/// compared in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(auth_token.as_bytes(), url, params).is_some_and(|mac| mac.verify_slice(&expected).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio_example() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const EXPECTED: &str = "GvWf1cFY/Q7PnoempGyD5oXAezc=";

    /// Twilio's published example (docs: webhooks security).
    #[test]
    fn twilios_published_example_verifies() {
        assert_eq!(compute("12345", URL, &twilio_example()), EXPECTED);
        assert!(verify("12345", URL, &twilio_example(), EXPECTED));
        let mut shuffled = twilio_example();
        shuffled.reverse();
        assert!(
            verify("12345", URL, &shuffled, EXPECTED),
            "order does not matter"
        );
    }

    #[test]
    fn anything_changed_fails() {
        let params = twilio_example();
        assert!(!verify("12346", URL, &params, EXPECTED), "other token");
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            EXPECTED
        ));
        assert!(!verify(
            "12345",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
            EXPECTED
        ));
        let mut extra = params.clone();
        extra.push(("Unknown".into(), "x".into()));
        assert!(
            !verify("12345", URL, &extra, EXPECTED),
            "an extra parameter"
        );
        assert!(
            !verify("12345", URL, &params[1..], EXPECTED),
            "a missing parameter"
        );
        assert!(!verify("12345", URL, &params, ""), "empty");
        assert!(!verify("12345", URL, &params, "not base64!"), "garbage");
        assert!(
            !verify("12345", URL, &params, "GvWf1cFY/Q7PnoempGyD5oXAez="),
            "truncated"
        );
    }
}
