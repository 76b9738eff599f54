//! `PUT /api/v1/types/{name}/versions`: a deploy from a browser or `curl
//! --data-binary @x.wasm`: the body is the component, the query says the
//! rest (`version`, `queue`, `set` — repeatable, `key=value`). The same
//! engine deploy as gRPC's DeployComponent, with the same checks.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use tonic::Status;

use super::{AppState, caller, error};
use crate::engine::Deploy;

/// `a%3Db+c` → `a=b c` (query-string decoding).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) async fn deploy(
    State(s): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = match caller(&s, &headers) {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    let (mut label, mut queue, mut set) = (None, None, Vec::new());
    for pair in query.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "version" => label = Some(v).filter(|v| !v.is_empty()),
            "queue" => queue = Some(v).filter(|v| !v.is_empty()),
            "set" => set.push(v),
            other => {
                return error(Status::invalid_argument(format!(
                    "unknown query parameter {other:?} (version, queue, set)"
                )));
            }
        }
    }
    if let Err(e) = crate::api::services::check_sets(&set) {
        return error(e);
    }
    let engine = s.api.engine.clone();
    let max = engine.max_component();
    let bytes = match http_body_util::Limited::new(body, max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return error(Status::resource_exhausted(format!(
                "the component is over the limit of {max} bytes (sandbox.max_component_size)"
            )));
        }
        Err(e) => return error(Status::invalid_argument(format!("the upload broke off: {e}"))),
    };
    if bytes.is_empty() {
        return error(Status::invalid_argument("the body is empty: send the component's bytes"));
    }
    let file = engine.upload_path();
    // Up to the component cap (256 MiB by default), written and fsynced off
    // the async workers.
    let written = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let result = std::fs::write(&file, &bytes).and_then(|_| std::fs::File::open(&file)?.sync_all());
            if result.is_err() {
                let _ = std::fs::remove_file(&file);
            }
            result
        })
        .await
    };
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return error(Status::internal(format!("cannot write the upload: {e}"))),
        Err(e) => return error(Status::internal(format!("cannot write the upload: {e}"))),
    }
    let by = match &caller.token {
        Some(t) => format!("http (token {t}…)"),
        None => "http".to_string(),
    };
    let d = Deploy { activity_type: name, file, label, queue, set, by, operator: caller.operator };
    match engine.deploy(d).await {
        Ok(record) => match engine.activity_type(&record.name) {
            Ok((record, config)) => axum::Json(crate::api::pb::DeployComponentResponse {
                activity_type: Some(s.api.type_pb(&record, &config)),
            })
            .into_response(),
            Err(e) => error(crate::api::convert::status_of(e)),
        },
        Err(e) => error(crate::api::convert::status_of(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(super::decode("slots%3D4"), "slots=4");
        assert_eq!(super::decode("a+b%2"), "a b%2");
        assert_eq!(super::decode("%zz%41"), "%zzA");
    }
}
