//! The OpenAPI 3.0 document of the JSON API, made from the contract's
//! descriptors (message schemas, with the proto's comments as
//! descriptions) and the route table. `host/openapi.json` in the repository
//! is this document; a test keeps the two equal.

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};
use serde_json::{Map, Value, json};

use super::routes::table;

/// Where the server serves it.
pub const PATH: &str = "/api/v1/openapi.json";

const PACKAGE: &str = "sluice.v1";

/// Leading comments by source path.
struct Comments(std::collections::HashMap<Vec<i32>, String>);

impl Comments {
    fn of(file: &FileDescriptorProto) -> Comments {
        let mut map = std::collections::HashMap::new();
        for loc in file.source_code_info.iter().flat_map(|s| &s.location) {
            if let Some(c) = &loc.leading_comments {
                let text = c.lines().map(str::trim).collect::<Vec<_>>().join(" ").trim().to_string();
                map.insert(loc.path.clone(), text);
            }
        }
        Comments(map)
    }

    fn at(&self, path: &[i32]) -> Option<&String> {
        self.0.get(path)
    }
}

/// The whole document.
pub fn document() -> Value {
    let set = FileDescriptorSet::decode(crate::api::DESCRIPTORS).expect("the build's own descriptors");
    let file = set.file.iter().find(|f| f.package() == PACKAGE).expect("the sluice.v1 file");
    let comments = Comments::of(file);
    let mut schemas = Map::new();
    for (i, m) in file.message_type.iter().enumerate() {
        message_schemas(m, &format!("{PACKAGE}.{}", m.name()), &[4, i as i32], &comments, file, &mut schemas);
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        let values: Vec<&str> = e.value.iter().map(|v| v.name()).collect();
        let mut s = json!({"type": "string", "enum": values});
        if let Some(c) = comments.at(&[5, i as i32]) {
            s["description"] = c.clone().into();
        }
        schemas.insert(e.name().to_string(), s);
    }
    schemas.insert(
        "Payload".into(),
        json!({
            "description": "A payload: JSON as JSON ({\"json\": value}, encoding json/plain), anything else base64 ({\"encoding\": ..., \"data\": base64}).",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["json"],
                    "properties": {
                        "json": {"description": "The payload, when it is JSON."},
                        "encoding": {"type": "string", "enum": ["json/plain"]}
                    },
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "encoding": {"type": "string", "description": "How data is encoded (default json/plain)."},
                        "data": {"type": "string", "format": "byte", "description": "The bytes, base64."}
                    },
                    "additionalProperties": false
                }
            ]
        }),
    );
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "The gRPC status name, e.g. INVALID_ARGUMENT."},
                "message": {"type": "string"}
            }
        }),
    );
    let messages: std::collections::HashMap<String, &DescriptorProto> =
        file.message_type.iter().map(|m| (m.name().to_string(), m)).collect();
    let mut paths = Map::new();
    for r in table() {
        let request = messages.get(r.request).copied();
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        for q in r.query {
            let field = request
                .and_then(|m| m.field.iter().find(|f| f.name() == *q || (*q == "queue" && f.name() == "task_queue")));
            let schema = match field {
                // A status may be written short (failed) or in full.
                _ if *q == "status" => json!({"type": "string", "enum": status_names(file)}),
                Some(f) => field_schema(f, file),
                None => json!({"type": "string"}),
            };
            let flat = schema.get("$ref").is_none() && schema.get("allOf").is_none();
            let schema = if flat { schema } else { json!({"type": "string"}) };
            params.push(json!({"name": q, "in": "query", "required": false, "schema": schema}));
        }
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method, r.path.replace(['/', '{', '}', '-'], "_").trim_matches('_')),
            "parameters": params,
            "responses": {
                "default": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        op["responses"]["200"] = if r.response == "sse" {
            json!({"description": "text/event-stream: each event named by its kind, its data JSON",
            "content": {"text/event-stream": {"schema": {
                "type": "object",
                "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}}
            }}}})
        } else {
            json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", r.response)}}}})
        };
        match r.body {
            Some(media) if media.starts_with("application/") => {
                op["requestBody"] =
                    json!({"required": true, "content": {media: {"schema": {"type": "string", "format": "binary"}}}});
            }
            Some(body) => {
                op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
            }
            None => {}
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    paths.insert(
        "/metrics".into(),
        json!({"get": {"summary": "Prometheus metrics (text exposition format)", "operationId": "get_metrics",
            "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Sluice HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The gRPC services' methods over JSON (proto3 JSON mapping, snake_case field names, durations like \"1.5s\", times RFC 3339, 64-bit integers as strings). Same validation, limits and error meanings as gRPC: the HTTP status follows the gRPC code, the body is {\"code\", \"message\"}. When the server has tokens, send Authorization: Bearer <token>."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{}, {"bearer": []}]
    })
}

fn message_schemas(
    m: &DescriptorProto,
    full: &str,
    path: &[i32],
    comments: &Comments,
    file: &FileDescriptorProto,
    out: &mut Map<String, Value>,
) {
    let name = schema_name(full);
    if name == "Payload" || m.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let mut properties = Map::new();
    for (j, f) in m.field.iter().enumerate() {
        let mut s = field_schema(f, file);
        let mut field_path = path.to_vec();
        field_path.extend([2, j as i32]);
        if let Some(c) = comments.at(&field_path) {
            // A $ref takes no siblings in OpenAPI 3.0: wrap it.
            if s.get("$ref").is_some() {
                s = json!({"allOf": [s]});
            }
            s["description"] = c.clone().into();
        }
        properties.insert(f.name().to_string(), s);
    }
    let mut schema = json!({"type": "object", "properties": properties, "additionalProperties": false});
    if let Some(c) = comments.at(path) {
        schema["description"] = c.clone().into();
    }
    out.insert(name, schema);
    for (k, nested) in m.nested_type.iter().enumerate() {
        let mut nested_path = path.to_vec();
        nested_path.extend([3, k as i32]);
        message_schemas(nested, &format!("{full}.{}", nested.name()), &nested_path, comments, file, out);
    }
}

/// The names a status filter takes: in full and short.
fn status_names(file: &FileDescriptorProto) -> Vec<String> {
    let e = file.enum_type.iter().find(|e| e.name() == "ActivityStatus").expect("ActivityStatus");
    let full: Vec<String> = e.value.iter().map(|v| v.name().to_string()).collect();
    let short = full.iter().map(|n| n.trim_start_matches("ACTIVITY_STATUS_").to_ascii_lowercase().replace('_', "-"));
    full.iter().cloned().chain(short).collect()
}

/// `sluice.v1.A.B` → `A.B`.
fn schema_name(full: &str) -> String {
    full.trim_start_matches('.').trim_start_matches(PACKAGE).trim_start_matches('.').to_string()
}

fn field_schema(f: &prost_types::FieldDescriptorProto, file: &FileDescriptorProto) -> Value {
    let item = match f.r#type() {
        Type::String => json!({"type": "string"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => json!({"type": "integer", "format": "int32"}),
        Type::Uint32 | Type::Fixed32 => json!({"type": "integer", "format": "int32", "minimum": 0}),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 | Type::Uint64 | Type::Fixed64 => {
            json!({"type": "string", "format": "int64"})
        }
        Type::Double | Type::Float => json!({"type": "number"}),
        Type::Bytes => json!({"type": "string", "format": "byte"}),
        Type::Enum | Type::Message | Type::Group => match f.type_name() {
            ".google.protobuf.Duration" => json!({
                "type": "string",
                "pattern": "^[0-9]{1,9}(\\.[0-9]{1,9})?s$",
                "description": "A duration in seconds, e.g. \"1.5s\"."
            }),
            ".google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
            other => {
                if let Some(entry) = map_entry(other, file) {
                    let value = entry.field.iter().find(|x| x.name() == "value").map(|v| field_schema(v, file));
                    return json!({"type": "object", "additionalProperties": value.unwrap_or(json!({}))});
                }
                let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(other))});
                // A message field may be absent (null); an enum never is.
                if f.r#type() == Type::Message && f.label() != Label::Repeated {
                    json!({"allOf": [reference], "nullable": true})
                } else {
                    reference
                }
            }
        },
    };
    if f.label() == Label::Repeated { json!({"type": "array", "items": item}) } else { item }
}

/// The map-entry message a `map<…>` field's type names, if it is one.
fn map_entry<'a>(type_name: &str, file: &'a FileDescriptorProto) -> Option<&'a DescriptorProto> {
    let path = schema_name(type_name);
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut m = file.message_type.iter().find(|m| m.name() == first)?;
    for part in parts {
        m = m.nested_type.iter().find(|n| n.name() == part)?;
    }
    m.options.as_ref().is_some_and(|o| o.map_entry()).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `host/openapi.json` is what the server serves. After changing the
    /// proto or the routes: `SLUICE_WRITE_OPENAPI=1 cargo test -p sluice --lib openapi`.
    #[test]
    fn the_openapi_document_in_the_repository_is_the_one_served() {
        let doc = serde_json::to_string_pretty(&document()).unwrap() + "\n";
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("SLUICE_WRITE_OPENAPI").is_some() {
            std::fs::write(file, &doc).unwrap();
        }
        let kept = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            kept == doc,
            "host/openapi.json is stale: run SLUICE_WRITE_OPENAPI=1 cargo test -p sluice --lib openapi"
        );
    }

    #[test]
    fn every_route_and_message_is_documented() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for r in table() {
            assert!(doc["paths"][r.path][r.method].is_object(), "{} {}", r.method, r.path);
            if r.response != "sse" {
                assert!(schemas.contains_key(r.response), "{}", r.response);
            }
        }
        let text = doc.to_string();
        for reference in text.split("#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        assert!(schemas["StartActivityRequest"]["properties"]["activity_type"]["description"].is_string());
    }
}
