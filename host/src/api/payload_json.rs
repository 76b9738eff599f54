//! The JSON form of a `Payload` in the HTTP API: a JSON payload is written
//! as JSON (`{"json": {"name": "Ada"}}`), any other as base64
//! (`{"encoding": "binary/plain", "data": "AAEC"}`). Both forms are read;
//! `{"json": …}` means encoding `json/plain`.

use base64::Engine as _;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::pb::Payload;
use crate::payload::JSON;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(2))?;
        let json = (self.encoding == JSON || self.encoding.is_empty())
            .then(|| serde_json::from_slice::<serde_json::Value>(&self.data).ok())
            .flatten();
        match json {
            Some(value) => map.serialize_entry("json", &value)?,
            None => {
                map.serialize_entry("encoding", &self.encoding)?;
                map.serialize_entry("data", &B64.encode(&self.data))?;
            }
        }
        map.end()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    json: Option<serde_json::Value>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Written::deserialize(d)?;
        match (w.json, w.data) {
            (Some(value), None) => {
                if w.encoding.as_deref().is_some_and(|e| e != JSON) {
                    return Err(D::Error::custom("a payload given as `json` has encoding json/plain"));
                }
                let data = serde_json::to_vec(&value).map_err(D::Error::custom)?;
                Ok(Payload { encoding: JSON.into(), data })
            }
            (None, Some(data)) => {
                let data =
                    B64.decode(data).map_err(|e| D::Error::custom(format!("payload data is not base64: {e}")))?;
                Ok(Payload { encoding: w.encoding.unwrap_or_else(|| JSON.into()), data })
            }
            _ => Err(D::Error::custom("a payload is {\"json\": value} or {\"encoding\": …, \"data\": base64}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payloads_are_json_and_others_base64_both_ways() {
        let p = Payload { encoding: JSON.into(), data: br#"{"name":"Ada"}"#.to_vec() };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(text, r#"{"json":{"name":"Ada"}}"#);
        assert_eq!(serde_json::from_str::<Payload>(&text).unwrap(), p);
        let b = Payload { encoding: "binary/plain".into(), data: vec![0, 1, 2] };
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(text, r#"{"encoding":"binary/plain","data":"AAEC"}"#);
        assert_eq!(serde_json::from_str::<Payload>(&text).unwrap(), b);
        for bad in
            [r#"{}"#, r#"{"json":1,"data":"AA=="}"#, r#"{"data":"%%"}"#, r#"{"json":1,"encoding":"x"}"#, r#"{"jsn":1}"#]
        {
            assert!(serde_json::from_str::<Payload>(bad).is_err(), "{bad}");
        }
    }
}
