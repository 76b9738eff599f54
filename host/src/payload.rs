//! Payloads: bytes plus an encoding tag, with the size cap every payload and
//! heartbeat-details value obeys.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Encoding tag of JSON payloads, the default everywhere a person types one.
pub const JSON: &str = "json/plain";

/// Default cap on one payload or heartbeat-details value (2 MiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 2 * 1024 * 1024;

/// Opaque bytes plus a tag saying how they are encoded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub encoding: String,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

/// Bytes as base64 text, so stored and serialised payloads stay compact.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

impl Payload {
    /// A JSON payload from text that must parse as JSON.
    pub fn json_text(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(text)?;
        Ok(Payload { encoding: JSON.into(), data: text.as_bytes().to_vec() })
    }

    /// A JSON payload from any serialisable value.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        let data = serde_json::to_vec(value).expect("serialising to a Vec cannot fail for JSON values");
        Payload { encoding: JSON.into(), data }
    }

    pub fn is_json(&self) -> bool {
        self.encoding == JSON
    }

    /// The payload as JSON text when it is JSON and valid UTF-8.
    pub fn as_json_str(&self) -> Option<&str> {
        self.is_json().then(|| std::str::from_utf8(&self.data).ok()).flatten()
    }

    /// The payload as a JSON value: the decoded value for JSON payloads,
    /// otherwise an object describing the encoding and size.
    pub fn to_json_value(&self) -> serde_json::Value {
        match self.as_json_str().and_then(|s| serde_json::from_str(s).ok()) {
            Some(value) => value,
            None => serde_json::json!({ "encoding": self.encoding, "bytes": self.data.len() }),
        }
    }

    /// Checks the payload against `max` bytes; `what` names it in the error.
    pub fn check_size(&self, what: &str, max: usize) -> Result<(), PayloadTooLarge> {
        if self.data.len() > max {
            return Err(PayloadTooLarge { what: what.to_string(), size: self.data.len(), max });
        }
        Ok(())
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_json_str() {
            Some(text) => write!(f, "{text}"),
            None => write!(f, "<{} bytes of {}>", self.data.len(), self.encoding),
        }
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A payload over its size cap.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} is {} bytes, over the limit of {} bytes", size, max)]
pub struct PayloadTooLarge {
    pub what: String,
    pub size: usize,
    pub max: usize,
}

/// Serialises an optional payload as its JSON value (see
/// [`Payload::to_json_value`]), for human- and script-facing output.
pub fn serialize_opt_as_json<S: serde::Serializer>(payload: &Option<Payload>, s: S) -> Result<S::Ok, S::Error> {
    payload.as_ref().map(Payload::to_json_value).serialize(s)
}
