//! Task tokens: opaque, HMAC-signed handles naming exactly one attempt, so
//! a client can complete an attempt it was handed but cannot forge one for
//! another activity or attempt.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a token names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskToken {
    #[serde(rename = "a")]
    pub activity_id: String,
    #[serde(rename = "r")]
    pub run_id: String,
    #[serde(rename = "n")]
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed task token")]
    Malformed,
    #[error("task token signature does not verify (forged, or from another host)")]
    BadSignature,
}

/// An attempt's task token as handed to its runner: signed only when asked
/// for, since most attempts never ask.
#[derive(Clone)]
pub enum AttemptToken {
    Unsigned {
        signer: std::sync::Arc<TokenSigner>,
        token: TaskToken,
    },
    /// Already made (a local run has no server to verify one).
    Fixed(String),
}

impl AttemptToken {
    pub fn get(&self) -> String {
        match self {
            AttemptToken::Unsigned { signer, token } => signer.sign(token),
            AttemptToken::Fixed(s) => s.clone(),
        }
    }
}

impl From<&str> for AttemptToken {
    fn from(s: &str) -> Self {
        AttemptToken::Fixed(s.to_string())
    }
}

/// Signs and verifies tokens with the host secret.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl TokenSigner {
    pub fn new(key: Vec<u8>) -> Self {
        TokenSigner { key }
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body);
        mac
    }

    /// `base64url(claims) "." base64url(hmac-sha256(claims))`.
    pub fn sign(&self, token: &TaskToken) -> String {
        let body = B64.encode(serde_json::to_vec(token).expect("claims serialise"));
        let sig = B64.encode(self.mac(body.as_bytes()).finalize().into_bytes());
        format!("{body}.{sig}")
    }

    pub fn verify(&self, token: &str) -> Result<TaskToken, TokenError> {
        let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        self.mac(body.as_bytes()).verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
        let claims = B64.decode(body).map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&claims).map_err(|_| TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TaskToken {
        TaskToken { activity_id: "a".into(), run_id: "r".into(), attempt: 2 }
    }

    #[test]
    fn a_signed_token_verifies_and_names_its_attempt() {
        let s = TokenSigner::new(b"secret".to_vec());
        assert_eq!(s.verify(&s.sign(&token())), Ok(token()));
    }

    #[test]
    fn forged_and_foreign_tokens_are_rejected() {
        let s = TokenSigner::new(b"secret".to_vec());
        let signed = s.sign(&token());
        // Another activity's claims with this token's signature.
        let (_, sig) = signed.split_once('.').unwrap();
        let other = B64.encode(serde_json::to_vec(&TaskToken { activity_id: "b".into(), ..token() }).unwrap());
        assert_eq!(s.verify(&format!("{other}.{sig}")), Err(TokenError::BadSignature));
        // Signed by another host's secret.
        let foreign = TokenSigner::new(b"other".to_vec()).sign(&token());
        assert_eq!(s.verify(&foreign), Err(TokenError::BadSignature));
        assert_eq!(s.verify("garbage"), Err(TokenError::Malformed));
        assert_eq!(s.verify("a.b!"), Err(TokenError::Malformed));
    }
}
