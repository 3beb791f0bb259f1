//! The OpenAPI 3.1 description of the REST/JSON API (`/api/v1/openapi.json`), generated from the
//! services' descriptors so that it cannot drift from what the gateway actually forwards: every
//! gRPC method is `POST /api/v1/{service}/{method}` with the request message as the body, in the
//! proto3 JSON mapping that `catalog::from_json` and `catalog::to_json` apply.
//!
//! Message and enum schemas live in `components.schemas` under their full protobuf names; the
//! well-known `google.protobuf` types are inlined as their special JSON forms (a `Timestamp` is
//! an RFC 3339 string, not an object with `seconds`). Descriptions come from the comments that
//! protox keeps in the descriptor set's source code info.

use prost_reflect::{
    EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor,
};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

const API_PREFIX: &str = "/api/v1";
const SCHEMA_PREFIX: &str = "#/components/schemas/";
const ERROR_SCHEMA: &str = "Error";

/// The error statuses every operation may answer, with the gRPC codes behind them (the
/// mapping of `hcrm_kit::error::http_status_of`) and the shared response that describes them.
const ERROR_RESPONSES: [(&str, &str, &str); 9] = [
    (
        "400",
        "BadRequest",
        "INVALID_ARGUMENT or OUT_OF_RANGE: the body is not valid JSON for the request message, or a \
         field is invalid (named in `fieldViolations`).",
    ),
    (
        "401",
        "Unauthenticated",
        "UNAUTHENTICATED: no bearer token or session cookie, or it is invalid or expired.",
    ),
    (
        "403",
        "PermissionDenied",
        "PERMISSION_DENIED: the caller lacks a permission, a session call lacks its CSRF token, or \
         the request comes from a page of another site.",
    ),
    (
        "404",
        "NotFound",
        "NOT_FOUND: the resource (or the method) does not exist.",
    ),
    (
        "409",
        "Conflict",
        "ALREADY_EXISTS (the existing resource is named in `metadata`) or ABORTED (a stale `etag`: \
         read again and retry).",
    ),
    (
        "412",
        "FailedPrecondition",
        "FAILED_PRECONDITION: the resource is not in a state that allows this call.",
    ),
    (
        "429",
        "TooManyRequests",
        "RESOURCE_EXHAUSTED: a rate limit or quota was hit; retry later.",
    ),
    (
        "500",
        "InternalError",
        "INTERNAL, UNKNOWN or DATA_LOSS: a fault on the server; quote `requestId` when reporting it.",
    ),
    (
        "503",
        "Unavailable",
        "UNAVAILABLE: the service is unreachable or overloaded; retry with backoff.",
    ),
];

/// The canonical gRPC code names an error may carry (never OK).
const ERROR_CODES: [&str; 16] = [
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The path of a method in the REST API: `/api/v1/{service}/{method}`.
pub fn path_of(method: &MethodDescriptor) -> String {
    format!("{API_PREFIX}/{}/{}", method.parent_service().full_name(), method.name())
}

/// The OpenAPI 3.1 document for these services.
pub fn document(services: &[ServiceDescriptor]) -> Value {
    let mut seen_services = HashSet::new();
    let services: Vec<&ServiceDescriptor> = services
        .iter()
        .filter(|s| seen_services.insert(s.full_name().to_string()))
        .collect();
    let ambiguous = ambiguous_short_names(&services);

    let mut builder = Builder::default();
    let mut paths = Map::new();
    let mut tags = Vec::new();
    let mut operation_ids = HashSet::new();
    for service in &services {
        let mut tag = json!({ "name": service.full_name() });
        if let Some(doc) = builder.docs.get(&service.parent_file(), service.path()) {
            tag["description"] = Value::String(doc);
        }
        tags.push(tag);
        // Short names read better; a name two packages share gets the full name instead.
        let prefix = if ambiguous.contains(service.name()) {
            service.full_name().replace('.', "_")
        } else {
            service.name().to_string()
        };
        for method in service.methods() {
            let operation_id = unique(format!("{prefix}_{}", method.name()), &mut operation_ids);
            let operation = builder.operation(&method, operation_id);
            paths.insert(path_of(&method), json!({ "post": operation }));
        }
    }
    let mut schemas = builder.finish();
    schemas.insert(ERROR_SCHEMA.to_string(), error_schema());

    let mut responses = Map::new();
    responses.insert(
        "Error".to_string(),
        error_response("An error, with the gRPC code and the HTTP status it maps to."),
    );
    for (_, name, description) in ERROR_RESPONSES {
        responses.insert(name.to_string(), error_response(description));
    }

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "HCRM API",
            "version": "v1",
            "description": INFO_DESCRIPTION,
        },
        "servers": [{ "url": "/" }],
        "tags": tags,
        "security": security(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "parameters": {
                "RequestId": {
                    "name": "X-Request-Id",
                    "in": "header",
                    "required": false,
                    "description": "Your id for this call (1–64 printable ASCII characters), passed on to the service \
                                    and quoted in errors as `requestId`; one is generated when it is absent or unusable.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 64 },
                },
                "CsrfToken": {
                    "name": "X-CSRF-Token",
                    "in": "header",
                    "required": false,
                    "description": "The session's CSRF token: required on every call authenticated with the session \
                                    cookie (all API calls are writes), ignored with a bearer token.",
                    "schema": { "type": "string" },
                },
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "`Authorization: Bearer <token>`, for integrations; the token is passed on to the \
                                    services, which verify it.",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-hcrm_session",
                    "description": "The staff console's session cookie, set at sign-in. Calls made with it (every API \
                                    call is a POST, so a write) also need the session's CSRF token in the header \
                                    `X-CSRF-Token`, and requests from pages of other sites are refused.",
                },
            },
        },
    })
}

const INFO_DESCRIPTION: &str = "REST/JSON access to the HCRM services. Every gRPC method is \
`POST /api/v1/{package.Service}/{Method}` with the request message as the JSON body, in the proto3 JSON \
mapping: lowerCamelCase field names, 64-bit integers as strings, enums by value name, timestamps as RFC 3339 \
strings, bytes as base64, fields at their default value left out of responses. Server-streaming methods answer \
NDJSON (one message per line); client-streaming methods take a JSON array of request messages. Errors answer \
`{\"error\": {\"code\", \"status\", \"message\", …}}` with the HTTP status of the gRPC code.";

fn security() -> Value {
    json!([{ "bearerAuth": [] }, { "sessionCookie": [] }])
}

/// Service names that occur in more than one package (with the same short name).
fn ambiguous_short_names(services: &[&ServiceDescriptor]) -> HashSet<String> {
    let mut packages: HashMap<&str, HashSet<&str>> = HashMap::new();
    for service in services {
        packages.entry(service.name()).or_default().insert(service.full_name());
    }
    packages
        .into_iter()
        .filter(|(_, full_names)| full_names.len() > 1)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// `base`, or `base_2`, `base_3`… when taken, so operation ids stay unique whatever the names.
fn unique(base: String, taken: &mut HashSet<String>) -> String {
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/json": { "schema": { "$ref": format!("{SCHEMA_PREFIX}{ERROR_SCHEMA}") } },
        },
    })
}

/// The body of every error (`api::error::HttpError` under `error`).
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error: the gRPC code, its HTTP status, and the details a client acts on.",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": ERROR_CODES,
                        "description": "The canonical gRPC code name.",
                    },
                    "status": {
                        "type": "integer",
                        "format": "int32",
                        "description": "The HTTP status of the response (the one the code maps to).",
                    },
                    "message": {
                        "type": "string",
                        "description": "What went wrong, for people; do not parse it.",
                    },
                    "requestId": {
                        "type": "string",
                        "description": "The id of the call (`X-Request-Id`), to quote when reporting a problem.",
                    },
                    "fieldViolations": {
                        "type": "array",
                        "description": "The invalid fields of an INVALID_ARGUMENT.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {
                                    "type": "string",
                                    "description": "Path of the field, e.g. `patient.phones[0]` or `body`.",
                                },
                                "description": { "type": "string", "description": "Why it is invalid." },
                            },
                            "required": ["field", "description"],
                            "additionalProperties": false,
                        },
                    },
                    "reason": {
                        "type": "string",
                        "description": "A machine-readable reason, when the service gave one.",
                    },
                    "metadata": {
                        "type": "object",
                        "additionalProperties": { "type": "string" },
                        "description": "Details of the reason, e.g. the existing resource of an ALREADY_EXISTS.",
                    },
                },
                "required": ["code", "status", "message"],
                "additionalProperties": false,
            },
        },
        "required": ["error"],
        "additionalProperties": false,
    })
}

/// What the inlined well-known types look like in JSON, or `None` for a message that is
/// described by its own schema (ordinary messages, and `google.protobuf` ones with no special
/// JSON form, such as `SourceContext`).
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    let nullable = |ty: &str, format: Option<&str>| {
        let mut schema = json!({ "type": [ty, "null"] });
        if let Some(format) = format {
            schema["format"] = json!(format);
        }
        schema
    };
    let schema = match message.full_name() {
        "google.protobuf.Timestamp" => json!({
            "type": "string",
            "format": "date-time",
            "examples": ["2026-01-15T08:30:00Z"],
        }),
        "google.protobuf.Duration" => json!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "A duration in seconds with an `s` suffix, e.g. `1.5s`.",
            "examples": ["1.5s"],
        }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Comma-separated field paths in lowerCamelCase, e.g. `displayName,address.city`.",
        }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({ "description": "Any JSON value." }),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Empty" => json!({ "type": "object", "properties": {}, "additionalProperties": false }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {
                "@type": {
                    "type": "string",
                    "description": "The type URL, e.g. `type.googleapis.com/google.rpc.BadRequest`.",
                },
            },
            "required": ["@type"],
            "additionalProperties": true,
            "description": "A message of the type named by `@type`, with its fields alongside (or under `value` \
                            for a well-known type).",
        }),
        "google.protobuf.DoubleValue" => nullable("number", Some("double")),
        "google.protobuf.FloatValue" => nullable("number", Some("float")),
        "google.protobuf.Int64Value" => nullable("string", Some("int64")),
        "google.protobuf.UInt64Value" => nullable("string", Some("uint64")),
        "google.protobuf.Int32Value" => nullable("integer", Some("int32")),
        "google.protobuf.UInt32Value" => nullable("integer", Some("uint32")),
        "google.protobuf.BoolValue" => nullable("boolean", None),
        "google.protobuf.StringValue" => nullable("string", None),
        "google.protobuf.BytesValue" => {
            let mut schema = nullable("string", Some("byte"));
            schema["contentEncoding"] = json!("base64");
            schema
        }
        _ => return None,
    };
    Some(schema)
}

/// A named schema still to be written into `components.schemas`.
enum Pending {
    Message(MessageDescriptor),
    Enum(EnumDescriptor),
}

/// Walks the services' methods, collecting the schemas of every message and enum they reach.
#[derive(Default)]
struct Builder {
    docs: Docs,
    schemas: Map<String, Value>,
    named: HashSet<String>,
    pending: Vec<Pending>,
}

impl Builder {
    fn operation(&mut self, method: &MethodDescriptor, operation_id: String) -> Value {
        let input = method.input();
        let output = method.output();
        let client_streaming = method.is_client_streaming();
        let server_streaming = method.is_server_streaming();

        let doc = self.docs.get(&method.parent_file(), method.path());
        let mut notes = Vec::new();
        if client_streaming {
            notes.push(format!(
                "Client streaming: the body is a JSON array of `{}` messages, sent to the service in order.",
                input.full_name()
            ));
        }
        if server_streaming {
            notes.push(format!(
                "Server streaming: the response is NDJSON, one `{}` message per line as the service sends it.",
                output.full_name()
            ));
        }
        let description = doc.iter().cloned().chain(notes).collect::<Vec<_>>().join("\n\n");

        let request_schema = self.message_ref(&input);
        let request_body = if client_streaming {
            json!({
                "required": false,
                "description": format!(
                    "A JSON array of `{}` messages, streamed to the service in order; an empty body is the same \
                     as `[]`.",
                    input.full_name()
                ),
                "content": {
                    "application/json": { "schema": { "type": "array", "items": request_schema } },
                },
            })
        } else {
            json!({
                "required": false,
                "description": format!(
                    "The `{}` message; an empty body is the same as `{{}}`.",
                    input.full_name()
                ),
                "content": { "application/json": { "schema": request_schema } },
            })
        };

        let response_schema = self.message_ref(&output);
        let ok = if server_streaming {
            json!({
                "description": format!(
                    "A stream of `{}` messages as NDJSON: one JSON object per line, each sent as the service \
                     produces it. An error after the stream has started ends it with one `{{\"error\": …}}` line \
                     (the `Error` schema); the status stays 200.",
                    output.full_name()
                ),
                "x-stream": true,
                "content": { "application/x-ndjson": { "schema": response_schema } },
            })
        } else {
            json!({
                "description": format!("The `{}` message.", output.full_name()),
                "content": { "application/json": { "schema": response_schema } },
            })
        };

        let mut responses = Map::new();
        responses.insert("200".to_string(), ok);
        for (status, name, _) in ERROR_RESPONSES {
            responses.insert(
                status.to_string(),
                json!({ "$ref": format!("#/components/responses/{name}") }),
            );
        }
        // Codes with rarer statuses (499, 501, 504) still answer the same body.
        responses.insert("default".to_string(), json!({ "$ref": "#/components/responses/Error" }));

        let mut operation = json!({
            "operationId": operation_id,
            "tags": [method.parent_service().full_name()],
            "parameters": [
                { "$ref": "#/components/parameters/RequestId" },
                { "$ref": "#/components/parameters/CsrfToken" },
            ],
            "requestBody": request_body,
            "responses": responses,
            "security": security(),
        });
        if let Some(doc) = &doc {
            operation["summary"] = Value::String(summary_of(doc));
        }
        if !description.is_empty() {
            operation["description"] = Value::String(description);
        }
        if is_deprecated_method(method) {
            operation["deprecated"] = Value::Bool(true);
        }
        operation
    }

    /// Writes the schemas of everything reached so far, and of what those reach in turn.
    fn finish(mut self) -> Map<String, Value> {
        while let Some(next) = self.pending.pop() {
            let (name, schema) = match next {
                Pending::Message(message) => (message.full_name().to_string(), self.message_schema(&message)),
                Pending::Enum(enum_ty) => (enum_ty.full_name().to_string(), self.enum_schema(&enum_ty)),
            };
            self.schemas.insert(name, schema);
        }
        self.schemas
    }

    fn reference(&mut self, full_name: &str, pending: impl FnOnce() -> Pending) -> Value {
        if self.named.insert(full_name.to_string()) {
            self.pending.push(pending());
        }
        json!({ "$ref": format!("{SCHEMA_PREFIX}{full_name}") })
    }

    fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        self.reference(message.full_name(), || Pending::Message(message.clone()))
    }

    fn enum_ref(&mut self, enum_ty: &EnumDescriptor) -> Value {
        // NullValue is the one enum whose JSON form is not its value name.
        if enum_ty.full_name() == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        self.reference(enum_ty.full_name(), || Pending::Enum(enum_ty.clone()))
    }

    fn message_schema(&mut self, message: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        for field in message.fields() {
            let mut schema = self.field_schema(&field);
            let mut doc = self.docs.get(&field.parent_file(), field.path());
            if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
                let members: Vec<String> = oneof.fields().map(|f| format!("`{}`", f.json_name())).collect();
                let note = format!(
                    "Member of oneof `{}`: set at most one of {}.",
                    oneof.name(),
                    members.join(", ")
                );
                doc = Some(match doc {
                    Some(doc) => format!("{doc}\n\n{note}"),
                    None => note,
                });
            }
            if let Some(doc) = doc {
                describe(&mut schema, doc);
            }
            if field
                .field_descriptor_proto()
                .options
                .as_ref()
                .and_then(|o| o.deprecated)
                == Some(true)
            {
                set(&mut schema, "deprecated", Value::Bool(true));
            }
            properties.insert(field.json_name().to_string(), schema);
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        });
        if let Some(doc) = self.docs.get(&message.parent_file(), message.path()) {
            describe(&mut schema, doc);
        }
        if message.descriptor_proto().options.as_ref().and_then(|o| o.deprecated) == Some(true) {
            set(&mut schema, "deprecated", Value::Bool(true));
        }
        schema
    }

    fn enum_schema(&mut self, enum_ty: &EnumDescriptor) -> Value {
        let names: Vec<String> = enum_ty.values().map(|v| v.name().to_string()).collect();
        // Value comments go into the enum's description: JSON Schema has no place for them.
        let documented: Vec<String> = enum_ty
            .values()
            .filter_map(|v| {
                let doc = self.docs.get(&v.parent_file(), v.path())?;
                Some(format!(
                    "- `{}`: {}",
                    v.name(),
                    doc.split_whitespace().collect::<Vec<_>>().join(" ")
                ))
            })
            .collect();
        let doc = self.docs.get(&enum_ty.parent_file(), enum_ty.path());
        let description = doc
            .into_iter()
            .chain((!documented.is_empty()).then(|| documented.join("\n")))
            .collect::<Vec<_>>()
            .join("\n\n");
        let mut schema = json!({ "type": "string", "enum": names });
        if !description.is_empty() {
            describe(&mut schema, description);
        }
        schema
    }

    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::Message(entry) if field.is_map() => {
                let key = entry.map_entry_key_field();
                let value = entry.map_entry_value_field();
                let mut schema = json!({
                    "type": "object",
                    "additionalProperties": self.kind_schema(&value.kind()),
                });
                if let Some(names) = map_key_names(&key.kind()) {
                    set(&mut schema, "propertyNames", names);
                }
                schema
            }
            kind if field.is_list() => json!({ "type": "array", "items": self.kind_schema(&kind) }),
            kind => self.kind_schema(&kind),
        }
    }

    fn kind_schema(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Message(message) => self.message_ref(message),
            Kind::Enum(enum_ty) => self.enum_ref(enum_ty),
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "uint32", "minimum": 0, "maximum": u32::MAX })
            }
            // Strings because JSON numbers lose precision above 2^53 in most parsers.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
            }
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "format": "byte", "contentEncoding": "base64" }),
        }
    }
}

/// What the keys of a map look like as JSON object keys (always strings), when not any string.
fn map_key_names(kind: &Kind) -> Option<Value> {
    match kind {
        Kind::Int32 | Kind::Int64 | Kind::Sint32 | Kind::Sint64 | Kind::Sfixed32 | Kind::Sfixed64 => {
            Some(json!({ "pattern": "^-?[0-9]+$" }))
        }
        Kind::Uint32 | Kind::Uint64 | Kind::Fixed32 | Kind::Fixed64 => Some(json!({ "pattern": "^[0-9]+$" })),
        Kind::Bool => Some(json!({ "enum": ["true", "false"] })),
        _ => None,
    }
}

fn is_deprecated_method(method: &MethodDescriptor) -> bool {
    method
        .method_descriptor_proto()
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        == Some(true)
}

fn set(schema: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = schema {
        map.insert(key.to_string(), value);
    }
}

/// Adds a description, ahead of one the schema already has (a well-known type's own note).
fn describe(schema: &mut Value, doc: String) {
    if let Value::Object(map) = schema {
        let description = match map.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{doc}\n\n{existing}"),
            None => doc,
        };
        map.insert("description".to_string(), Value::String(description));
    }
}

/// The first sentence of the first paragraph, on one line.
fn summary_of(doc: &str) -> String {
    let paragraph = doc.split("\n\n").next().unwrap_or(doc);
    let flat = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let end = flat
        .match_indices(". ")
        .map(|(i, _)| i)
        // "e.g. x" does not end a sentence.
        .find(|&i| !["e.g", "i.e", "etc", "vs"].iter().any(|abbr| flat[..i].ends_with(abbr)))
        .map_or(flat.len(), |i| i + 1);
    flat[..end].to_string()
}

/// The leading (else trailing) comments of the descriptor set's source code info, by file and
/// element path, read once per file.
#[derive(Default)]
struct Docs {
    files: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Docs {
    fn get(&mut self, file: &FileDescriptor, path: &[i32]) -> Option<String> {
        self.files
            .entry(file.name().to_string())
            .or_insert_with(|| comments_of(file))
            .get(path)
            .cloned()
    }
}

fn comments_of(file: &FileDescriptor) -> HashMap<Vec<i32>, String> {
    let Some(info) = &file.file_descriptor_proto().source_code_info else {
        return HashMap::new();
    };
    info.location
        .iter()
        .filter_map(|location| {
            let text = location
                .leading_comments
                .as_deref()
                .map(clean_comment)
                .filter(|c| !c.is_empty())
                .or_else(|| location.trailing_comments.as_deref().map(clean_comment))
                .filter(|c| !c.is_empty())?;
            Some((location.path.clone(), text))
        })
        .collect()
}

/// The comment text without the space after `//` and without surrounding blank lines.
fn clean_comment(raw: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect();
    lines.join("\n").trim_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, MessageOptions, MethodDescriptorProto,
        OneofDescriptorProto, ServiceDescriptorProto,
    };

    fn hcrm_services() -> Vec<ServiceDescriptor> {
        let pool = DescriptorPool::decode(hcrm_proto::FILE_DESCRIPTOR_SET).unwrap();
        pool.services()
            .filter(|s| s.package_name().starts_with("hcrm."))
            .collect()
    }

    fn hcrm_document() -> Value {
        document(&hcrm_services())
    }

    fn operation<'a>(doc: &'a Value, service: &str, method: &str) -> &'a Value {
        let path = format!("/api/v1/{service}/{method}");
        let op = &doc["paths"][path.as_str()]["post"];
        assert!(op.is_object(), "no operation at {path}");
        op
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        let schema = &doc["components"]["schemas"][name];
        assert!(schema.is_object(), "no schema {name}");
        schema
    }

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => out.push(target),
                        _ => refs(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
            _ => {}
        }
    }

    fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("not local: {reference}"));
        doc.pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"))
    }

    fn operations(doc: &Value) -> Vec<(&String, &Value)> {
        doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(path, item)| (path, &item["post"]))
            .collect()
    }

    #[test]
    fn path_follows_the_rest_convention() {
        let services = hcrm_services();
        let service = services
            .iter()
            .find(|s| s.full_name() == "hcrm.patients.v1.PatientService")
            .unwrap();
        let method = service.methods().find(|m| m.name() == "GetPatient").unwrap();
        assert_eq!(path_of(&method), "/api/v1/hcrm.patients.v1.PatientService/GetPatient");
    }

    #[test]
    fn every_method_has_exactly_one_post_path() {
        let services = hcrm_services();
        assert!(
            services.len() >= 10,
            "expected the HCRM services, got {}",
            services.len()
        );
        let doc = document(&services);
        let paths = doc["paths"].as_object().unwrap();
        let mut methods = 0;
        for service in &services {
            for method in service.methods() {
                methods += 1;
                let item = paths[&path_of(&method)].as_object().unwrap();
                assert_eq!(item.keys().collect::<Vec<_>>(), ["post"], "{}", method.full_name());
            }
        }
        assert_eq!(paths.len(), methods);
    }

    #[test]
    fn the_same_service_twice_is_described_once() {
        let services = hcrm_services();
        let twice: Vec<_> = services.iter().chain(&services).cloned().collect();
        assert_eq!(document(&twice), document(&services));
    }

    #[test]
    fn every_ref_resolves_to_a_component() {
        let doc = hcrm_document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100);
        for reference in found {
            assert!(reference.starts_with("#/components/"), "{reference}");
            assert!(resolve(&doc, reference).is_object(), "{reference}");
        }
    }

    #[test]
    fn schemas_are_the_reachable_messages_and_enums_without_well_known_types() {
        let doc = hcrm_document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "hcrm.patients.v1.Patient",
            "hcrm.type.v1.Event",
            "hcrm.type.v1.ContactChannel",
            "hcrm.type.v1.Date",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        assert!(
            schemas.keys().all(|k| !k.starts_with("google.protobuf.")),
            "well-known types are inlined"
        );
        // Only in the descriptor set for clients decoding error details; no method uses it.
        assert!(!schemas.contains_key("google.rpc.Status"));
        // Every schema but Error is referenced somewhere, so none is unreachable.
        let mut found = Vec::new();
        refs(&doc["paths"], &mut found);
        refs(&doc["components"]["schemas"], &mut found);
        refs(&doc["components"]["responses"], &mut found);
        for name in schemas.keys() {
            let reference = format!("#/components/schemas/{name}");
            assert!(found.contains(&reference.as_str()), "{name} is not referenced");
        }
    }

    #[test]
    fn operation_ids_are_unique_and_named_after_service_and_method() {
        let doc = hcrm_document();
        let mut ids = HashSet::new();
        for (path, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "duplicate operationId {id} at {path}");
        }
        let op = operation(&doc, "hcrm.patients.v1.PatientService", "GetPatient");
        assert_eq!(op["operationId"], "PatientService_GetPatient");
        assert_eq!(op["tags"], json!(["hcrm.patients.v1.PatientService"]));
        // WatchEvents exists in several services.
        assert_eq!(
            operation(&doc, "hcrm.opinion.v1.MentionService", "WatchEvents")["operationId"],
            "MentionService_WatchEvents"
        );
    }

    #[test]
    fn document_header() {
        let doc = hcrm_document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "HCRM API");
        assert_eq!(doc["info"]["version"], "v1");
        assert!(doc["info"]["description"].as_str().unwrap().contains("NDJSON"));
        assert_eq!(doc["servers"], json!([{ "url": "/" }]));
        let tags: Vec<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(tags.contains(&"hcrm.opinion.v1.MentionService"));
    }

    #[test]
    fn patient_has_json_names_and_mapped_types() {
        let doc = hcrm_document();
        let patient = schema(&doc, "hcrm.patients.v1.Patient");
        assert_eq!(patient["type"], "object");
        assert_eq!(patient["additionalProperties"], false);
        let properties = patient["properties"].as_object().unwrap();
        for name in [
            "displayName",
            "namePinyin",
            "externalIds",
            "lastVisitTime",
            "contactPreferences",
            "vip",
        ] {
            assert!(properties.contains_key(name), "{name}");
        }
        assert!(!properties.contains_key("display_name"));
        assert_eq!(properties["vip"]["type"], "boolean");
        assert_eq!(properties["phones"]["type"], "array");
        assert_eq!(properties["phones"]["items"]["type"], "string");
        assert_eq!(
            properties["externalIds"]["items"]["$ref"],
            "#/components/schemas/hcrm.patients.v1.ExternalId"
        );
        assert_eq!(
            properties["birthDate"]["$ref"],
            "#/components/schemas/hcrm.type.v1.Date"
        );
        assert_eq!(properties["lastVisitTime"]["type"], "string");
        assert_eq!(properties["lastVisitTime"]["format"], "date-time");

        let list = &schema(&doc, "hcrm.patients.v1.ListPatientsResponse")["properties"];
        assert_eq!(list["totalSize"]["type"], "string");
        assert_eq!(list["totalSize"]["format"], "int64");
        let request = &schema(&doc, "hcrm.patients.v1.ListPatientsRequest")["properties"];
        assert_eq!(request["pageSize"]["type"], "integer");
        assert_eq!(request["pageSize"]["format"], "int32");
        let update = &schema(&doc, "hcrm.patients.v1.UpdatePatientRequest")["properties"];
        assert_eq!(update["updateMask"]["type"], "string");
    }

    #[test]
    fn enum_fields_are_strings_of_value_names() {
        let doc = hcrm_document();
        let patient = &schema(&doc, "hcrm.patients.v1.Patient")["properties"];
        assert_eq!(patient["sex"]["$ref"], "#/components/schemas/hcrm.patients.v1.Sex");
        let sex = schema(&doc, "hcrm.patients.v1.Sex");
        assert_eq!(sex["type"], "string");
        assert_eq!(
            sex["enum"],
            json!(["SEX_UNSPECIFIED", "SEX_MALE", "SEX_FEMALE", "SEX_OTHER"])
        );
        let channels = &schema(&doc, "hcrm.patients.v1.ContactPreferences")["properties"]["allowedChannels"];
        assert_eq!(channels["type"], "array");
        let channel = resolve(&doc, channels["items"]["$ref"].as_str().unwrap());
        assert!(
            channel["enum"]
                .as_array()
                .unwrap()
                .contains(&json!("CONTACT_CHANNEL_WECHAT"))
        );
    }

    #[test]
    fn unary_methods_take_and_answer_json_messages() {
        let doc = hcrm_document();
        let op = operation(&doc, "hcrm.patients.v1.PatientService", "GetPatient");
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/hcrm.patients.v1.GetPatientRequest"
        );
        let ok = &op["responses"]["200"];
        assert_eq!(
            ok["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/hcrm.patients.v1.Patient"
        );
        assert!(ok.get("x-stream").is_none());
    }

    #[test]
    fn server_streams_answer_ndjson() {
        let doc = hcrm_document();
        let op = operation(&doc, "hcrm.patients.v1.PatientService", "WatchEvents");
        let ok = &op["responses"]["200"];
        assert_eq!(ok["x-stream"], true);
        let content = ok["content"].as_object().unwrap();
        assert_eq!(content.keys().collect::<Vec<_>>(), ["application/x-ndjson"]);
        assert_eq!(
            content["application/x-ndjson"]["schema"]["$ref"],
            "#/components/schemas/hcrm.type.v1.Event"
        );
        // The request is still a single message.
        assert!(op["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string());
        assert!(op["description"].as_str().unwrap().contains("NDJSON"));
    }

    #[test]
    fn client_streams_take_an_array() {
        let doc = hcrm_document();
        let op = operation(&doc, "hcrm.opinion.v1.MentionService", "IngestMentions");
        let body = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["type"], "array");
        assert_eq!(
            body["items"]["$ref"],
            "#/components/schemas/hcrm.opinion.v1.IngestMentionsRequest"
        );
        assert!(op["requestBody"]["description"].as_str().unwrap().contains("array"));
        assert!(op["description"].as_str().unwrap().contains("JSON array"));
        let ok = &op["responses"]["200"];
        assert_eq!(
            ok["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/hcrm.opinion.v1.IngestMentionsResponse"
        );
        assert!(ok.get("x-stream").is_none());
    }

    #[test]
    fn bidi_streams_take_an_array_and_answer_ndjson() {
        let doc = hcrm_document();
        let op = operation(&doc, "hcrm.patients.v1.PatientService", "ImportPatients");
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["type"],
            "array"
        );
        assert_eq!(
            op["responses"]["200"]["content"]["application/x-ndjson"]["schema"]["$ref"],
            "#/components/schemas/hcrm.patients.v1.ImportPatientsResponse"
        );
    }

    #[test]
    fn every_operation_lists_the_error_responses_and_both_credentials() {
        let doc = hcrm_document();
        for (path, op) in operations(&doc) {
            for status in ["400", "401", "403", "404", "409", "412", "429", "500", "503"] {
                let response = resolve(&doc, op["responses"][status]["$ref"].as_str().unwrap());
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                    "{path} {status}"
                );
            }
            assert_eq!(
                op["security"],
                json!([{ "bearerAuth": [] }, { "sessionCookie": [] }]),
                "{path}"
            );
        }
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearerAuth"]["type"], "http");
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        assert_eq!(schemes["sessionCookie"]["in"], "cookie");
        assert_eq!(schemes["sessionCookie"]["name"], "__Host-hcrm_session");
        assert!(
            schemes["sessionCookie"]["description"]
                .as_str()
                .unwrap()
                .contains("X-CSRF-Token")
        );
    }

    #[test]
    fn the_error_schema_matches_the_error_body() {
        let doc = hcrm_document();
        let error = &schema(&doc, "Error")["properties"]["error"];
        assert_eq!(error["required"], json!(["code", "status", "message"]));
        let properties = &error["properties"];
        assert!(
            properties["code"]["enum"]
                .as_array()
                .unwrap()
                .contains(&json!("INVALID_ARGUMENT"))
        );
        assert_eq!(properties["status"]["type"], "integer");
        assert_eq!(
            properties["fieldViolations"]["items"]["required"],
            json!(["field", "description"])
        );
        assert_eq!(properties["metadata"]["additionalProperties"]["type"], "string");
        for key in ["message", "requestId", "reason"] {
            assert_eq!(properties[key]["type"], "string", "{key}");
        }
    }

    #[test]
    fn comments_become_summaries_and_descriptions() {
        let doc = hcrm_document();
        let op = operation(&doc, "hcrm.patients.v1.PatientService", "GetPatient");
        assert_eq!(op["summary"], "Returns one patient.");
        assert!(
            op["description"]
                .as_str()
                .unwrap()
                .contains("`patients.read_protected`")
        );
        let patient = schema(&doc, "hcrm.patients.v1.Patient");
        assert_eq!(
            patient["description"],
            "A patient: the member file kept by the service centre."
        );
        assert_eq!(
            patient["properties"]["displayName"]["description"],
            "Full name, 1–64 characters."
        );
        // A field that is a reference keeps its own comment next to the $ref.
        assert_eq!(
            patient["properties"]["deathDate"]["description"],
            "Date of death, when known."
        );
        let tag = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "hcrm.patients.v1.PatientService")
            .unwrap();
        assert!(
            tag["description"]
                .as_str()
                .unwrap()
                .starts_with("Keeps patient records")
        );
        // Only the values that have a comment are listed.
        let identity = schema(&doc, "hcrm.patients.v1.IdentityType")["description"]
            .as_str()
            .unwrap();
        assert!(identity.starts_with("The kind of identity document."));
        assert!(identity.contains("- `IDENTITY_TYPE_RESIDENT_ID`: Mainland resident identity card"));
        assert!(!identity.contains("IDENTITY_TYPE_PASSPORT"));
    }

    #[test]
    fn summary_is_the_first_sentence() {
        assert_eq!(
            summary_of("Creates a patient. Called by the console."),
            "Creates a patient."
        );
        assert_eq!(summary_of("Lists rows, e.g. `a`. More."), "Lists rows, e.g. `a`.");
        assert_eq!(
            summary_of("One line\nwrapped here.\n\nSecond paragraph."),
            "One line wrapped here."
        );
        assert_eq!(summary_of("No full stop"), "No full stop");
    }

    #[test]
    fn comments_lose_the_space_after_the_slashes() {
        assert_eq!(
            clean_comment(" First line.\n Second line.\n"),
            "First line.\nSecond line."
        );
        assert_eq!(clean_comment("\n"), "");
    }

    fn field(name: &str, number: i32, ty: Type, type_name: Option<&str>, label: Label) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(label as i32),
            r#type: Some(ty as i32),
            type_name: type_name.map(Into::into),
            ..Default::default()
        }
    }

    fn message(name: &str, fields: Vec<FieldDescriptorProto>) -> DescriptorProto {
        DescriptorProto {
            name: Some(name.into()),
            field: fields,
            ..Default::default()
        }
    }

    fn service(name: &str, methods: &[(&str, &str, &str, bool, bool)]) -> ServiceDescriptorProto {
        ServiceDescriptorProto {
            name: Some(name.into()),
            method: methods
                .iter()
                .map(|&(name, input, output, client, server)| MethodDescriptorProto {
                    name: Some(name.into()),
                    input_type: Some(input.into()),
                    output_type: Some(output.into()),
                    client_streaming: Some(client),
                    server_streaming: Some(server),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Features the HCRM protos do not use yet: maps, oneofs, nested types, wrappers and the
    /// other well-known types, unsigned and 64-bit kinds, and two services with one short name.
    fn synthetic_services() -> Vec<ServiceDescriptor> {
        use Label::{Optional, Repeated};
        let mut kitchen = message(
            "Kitchen",
            vec![
                field("counts", 1, Type::Message, Some(".t.a.Kitchen.CountsEntry"), Repeated),
                field("by_id", 2, Type::Message, Some(".t.a.Kitchen.ByIdEntry"), Repeated),
                field("text", 3, Type::String, None, Optional),
                field("number", 4, Type::Int64, None, Optional),
                field("big", 5, Type::Uint64, None, Optional),
                field("small", 6, Type::Uint32, None, Optional),
                field("blob", 7, Type::Bytes, None, Optional),
                field("ratio", 8, Type::Float, None, Optional),
                field("maybe", 9, Type::Message, Some(".google.protobuf.Int64Value"), Optional),
                field(
                    "label",
                    10,
                    Type::Message,
                    Some(".google.protobuf.StringValue"),
                    Optional,
                ),
                field("took", 11, Type::Message, Some(".google.protobuf.Duration"), Optional),
                field("extra", 12, Type::Message, Some(".google.protobuf.Struct"), Optional),
                field("anything", 13, Type::Message, Some(".google.protobuf.Value"), Optional),
                field("items", 14, Type::Message, Some(".google.protobuf.ListValue"), Optional),
                field("detail", 15, Type::Message, Some(".google.protobuf.Any"), Optional),
                field("inner", 16, Type::Message, Some(".t.a.Kitchen.Inner"), Repeated),
                field(
                    "stamps",
                    17,
                    Type::Message,
                    Some(".google.protobuf.Timestamp"),
                    Repeated,
                ),
                field("flag", 18, Type::Bool, None, Optional),
            ],
        );
        let map_entry = |name: &str, key: Type, value: Type, value_type: Option<&str>| DescriptorProto {
            options: Some(MessageOptions {
                map_entry: Some(true),
                ..Default::default()
            }),
            ..message(
                name,
                vec![
                    field("key", 1, key, None, Optional),
                    field("value", 2, value, value_type, Optional),
                ],
            )
        };
        let mut inner = message("Inner", vec![field("a_b", 1, Type::Sint64, None, Optional)]);
        inner.enum_type.push(prost_types::EnumDescriptorProto {
            name: Some("Level".into()),
            value: ["LEVEL_UNSPECIFIED", "LEVEL_HIGH"]
                .iter()
                .enumerate()
                .map(|(i, name)| prost_types::EnumValueDescriptorProto {
                    name: Some((*name).into()),
                    number: Some(i as i32),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        inner.field.push(field(
            "level",
            2,
            Type::Enum,
            Some(".t.a.Kitchen.Inner.Level"),
            Optional,
        ));
        kitchen.nested_type = vec![
            map_entry("CountsEntry", Type::String, Type::Int32, None),
            map_entry("ByIdEntry", Type::Int64, Type::Message, Some(".t.a.Kitchen.Inner")),
            inner,
        ];
        let mut choice = message(
            "Choice",
            vec![
                field("by_name", 1, Type::String, None, Optional),
                field("by_code", 2, Type::Int32, None, Optional),
            ],
        );
        choice.field.iter_mut().for_each(|f| f.oneof_index = Some(0));
        choice.oneof_decl.push(OneofDescriptorProto {
            name: Some("pick".into()),
            ..Default::default()
        });
        let imports = [
            "google/protobuf/any.proto",
            "google/protobuf/duration.proto",
            "google/protobuf/empty.proto",
            "google/protobuf/struct.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/wrappers.proto",
        ];
        let a = FileDescriptorProto {
            name: Some("t/a.proto".into()),
            package: Some("t.a".into()),
            dependency: imports.iter().map(|s| (*s).into()).collect(),
            message_type: vec![kitchen, choice],
            service: vec![service(
                "Things",
                &[
                    ("Cook", ".t.a.Choice", ".t.a.Kitchen", false, false),
                    ("Ping", ".google.protobuf.Empty", ".google.protobuf.Empty", false, false),
                ],
            )],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        let b = FileDescriptorProto {
            name: Some("t/b.proto".into()),
            package: Some("t.b".into()),
            dependency: vec!["google/protobuf/empty.proto".into()],
            service: vec![service(
                "Things",
                &[("Ping", ".google.protobuf.Empty", ".google.protobuf.Empty", true, true)],
            )],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        let mut pool = DescriptorPool::global();
        pool.add_file_descriptor_protos([a, b]).unwrap();
        pool.services().filter(|s| s.package_name().starts_with("t.")).collect()
    }

    #[test]
    fn maps_oneofs_nested_and_well_known_types() {
        let doc = document(&synthetic_services());
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for reference in found {
            assert!(resolve(&doc, reference).is_object(), "{reference}");
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(
            schemas
                .keys()
                .all(|k| !k.starts_with("google.") && !k.ends_with("Entry")),
            "{:?}",
            schemas.keys()
        );

        let kitchen = &schema(&doc, "t.a.Kitchen")["properties"];
        assert_eq!(
            kitchen["counts"],
            json!({ "type": "object", "additionalProperties": { "type": "integer", "format": "int32" } })
        );
        assert_eq!(kitchen["byId"]["type"], "object");
        assert_eq!(
            kitchen["byId"]["additionalProperties"]["$ref"],
            "#/components/schemas/t.a.Kitchen.Inner"
        );
        assert_eq!(kitchen["byId"]["propertyNames"]["pattern"], "^-?[0-9]+$");
        assert_eq!(kitchen["number"]["type"], "string");
        assert_eq!(kitchen["big"]["format"], "uint64");
        assert_eq!(kitchen["small"]["type"], "integer");
        assert_eq!(kitchen["blob"]["format"], "byte");
        assert_eq!(kitchen["ratio"]["type"], "number");
        assert_eq!(kitchen["maybe"]["type"], json!(["string", "null"]));
        assert_eq!(kitchen["label"]["type"], json!(["string", "null"]));
        assert_eq!(kitchen["took"]["type"], "string");
        assert_eq!(kitchen["took"]["examples"], json!(["1.5s"]));
        assert_eq!(kitchen["extra"]["type"], "object");
        assert!(kitchen["anything"].get("type").is_none());
        assert_eq!(kitchen["items"]["type"], "array");
        assert_eq!(kitchen["detail"]["required"], json!(["@type"]));
        assert_eq!(kitchen["stamps"]["items"]["format"], "date-time");
        assert_eq!(kitchen["flag"]["type"], "boolean");

        let inner = &schema(&doc, "t.a.Kitchen.Inner")["properties"];
        assert_eq!(inner["aB"]["format"], "int64");
        assert_eq!(inner["level"]["$ref"], "#/components/schemas/t.a.Kitchen.Inner.Level");
        assert_eq!(
            schema(&doc, "t.a.Kitchen.Inner.Level")["enum"],
            json!(["LEVEL_UNSPECIFIED", "LEVEL_HIGH"])
        );

        let choice = &schema(&doc, "t.a.Choice")["properties"];
        assert!(
            choice["byName"]["description"]
                .as_str()
                .unwrap()
                .contains("oneof `pick`")
        );
        assert!(
            choice["byCode"]["description"]
                .as_str()
                .unwrap()
                .contains("`byName`, `byCode`")
        );

        // Empty is inlined as request and response; both services keep distinct operation ids.
        let ping = operation(&doc, "t.a.Things", "Ping");
        assert_eq!(
            ping["requestBody"]["content"]["application/json"]["schema"]["type"],
            "object"
        );
        assert_eq!(
            ping["responses"]["200"]["content"]["application/json"]["schema"]["additionalProperties"],
            false
        );
        let other = operation(&doc, "t.b.Things", "Ping");
        assert_eq!(
            other["requestBody"]["content"]["application/json"]["schema"]["items"]["type"],
            "object"
        );
        assert!(other["responses"]["200"]["content"]["application/x-ndjson"].is_object());
        assert_eq!(ping["operationId"], "t_a_Things_Ping");
        assert_eq!(other["operationId"], "t_b_Things_Ping");
        assert_eq!(operation(&doc, "t.a.Things", "Cook")["operationId"], "t_a_Things_Cook");
        // No comments in a hand-built descriptor: no summary, and no description for unary calls.
        assert!(ping.get("summary").is_none());
        assert!(ping.get("description").is_none());
    }

    #[test]
    fn operation_ids_never_collide() {
        let mut taken = HashSet::new();
        assert_eq!(unique("A_B".into(), &mut taken), "A_B");
        assert_eq!(unique("A_B".into(), &mut taken), "A_B_2");
        assert_eq!(unique("A_B".into(), &mut taken), "A_B_3");
    }
}
