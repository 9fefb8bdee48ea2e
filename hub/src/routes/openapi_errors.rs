//! The error answers every operation can give, added to the OpenAPI document by one rule set so
//! that no handler can forget one: what the extractors, the middleware and the audited gate
//! answer is decided here once, from what the operation declares (a request body, parameters, a
//! security requirement), and every error answer points at the one error schema.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, ToSchema};

/// The body of every error answer.
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: error.rs serialises the same shape.
pub struct ErrorResponse {
    error: ErrorObject,
}

/// One error: a stable `code` to branch on, a message for people, the request id to quote to
/// operators, and for `validation_failed` the fields at fault (named, never their values).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorObject {
    /// Stable machine-readable code: `bad_request`, `validation_failed`, `unauthenticated`,
    /// `forbidden`, `no_grant`, `not_found`, `conflict`, `last_role_admin`,
    /// `cannot_disable_self`, `payload_too_large`, `unsupported_media_type`, `method_not_allowed`, `not_acceptable`,
    /// `rate_limited`, `quota_exceeded`, `integrity_failed`, `storage_unavailable`, `timeout`,
    /// `audit_unavailable`, `internal`.
    #[schema(pattern = "^[a-z_]+$")]
    code: String,
    message: String,
    request_id: String,
    details: Option<Vec<FieldProblemDoc>>,
}

/// A field that failed validation and why; never its value.
#[derive(ToSchema)]
#[schema(as = FieldProblem)]
#[allow(dead_code)]
pub struct FieldProblemDoc {
    /// The field's path in the request, e.g. `records[3].fields.phone`.
    field: String,
    problem: String,
}

/// What each error status means wherever it is added by the rules below.
fn meaning(status: &str) -> &'static str {
    match status {
        "400" => {
            "`bad_request`: the request could not be read (malformed JSON, a body of the wrong \
             shape, a malformed query string or path parameter)"
        }
        "401" => "`unauthenticated`: no bearer token, or a token that is invalid or expired",
        "403" => {
            "`forbidden` or `no_grant`: the caller's roles, grid scope, grants or \
             responsibilities do not allow this; audited"
        }
        "404" => "`not_found`: no such resource, or none the caller may know of",
        "409" => "`conflict`: the resource's current state does not allow this",
        "413" => "`payload_too_large`: the body is larger than the configured limit",
        "415" => "`unsupported_media_type`: send `content-type: application/json`",
        "422" => "`validation_failed`: well-formed request whose content is invalid",
        "429" => "`rate_limited` or `quota_exceeded`: retry after the `retry-after` seconds",
        "500" => "`integrity_failed` or `internal`: nothing was returned",
        "503" => {
            "`storage_unavailable`, `audit_unavailable` or `timeout`: nothing was done; retry \
             later"
        }
        _ => "error",
    }
}

fn error_response(status: &str) -> Response {
    ResponseBuilder::new()
        .description(meaning(status))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build(),
        )
        .build()
}

/// Adds, to every operation, the error answers it can give, and points every error answer
/// (declared by hand or added here) at `ErrorResponse`.
pub struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_error_answers(path, operation);
            }
        }
    }
}

/// The statuses an operation can answer with besides its own, by what it declares.
fn implied_statuses(path: &str, operation: &Operation) -> Vec<&'static str> {
    let mut statuses = Vec::new();
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = operation.request_body.is_some();
    if has_parameters || has_body {
        statuses.push("400");
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.extend(["401", "403"]);
    }
    if path.contains('{') {
        statuses.push("404");
    }
    if has_body {
        statuses.extend(["413", "415", "422"]);
    }
    // Query values are checked beyond their type (times, ranges, cursors): 422 like bodies.
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    if has_query {
        statuses.push("422");
    }
    // Failed logins are throttled; disclosures count against daily quotas.
    if path == "/v1/auth/login" || path.starts_with("/v1/data/") {
        statuses.push("429");
    }
    // The request deadline (and, on most routes, storage) can fail anywhere but the liveness
    // probe and the static key documents.
    if !matches!(
        path,
        "/healthz" | "/metrics" | "/.well-known/jwks.json" | "/v1/audit/public-key"
    ) {
        statuses.push("503");
    }
    statuses
}

fn add_error_answers(path: &str, operation: &mut Operation) {
    for status in implied_statuses(path, operation) {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(error_response(status)));
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response)
            && response.content.is_empty()
        {
            let description = std::mem::take(&mut response.description);
            *response = error_response(status);
            if !description.is_empty() {
                response.description = description;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use serde_json::Value;
    use utoipa::OpenApi;

    use crate::routes::openapi::ApiDoc;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        out
    }

    /// Every `"$ref"` string anywhere in `value`, with where it was found.
    fn refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push((at.to_owned(), r.clone())),
                        _ => refs(v, &format!("{at}/{k}"), out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    refs(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_path_parameter_is_in_its_path() {
        // `IntoParams` without `parameter_in = Query` documents its fields as path parameters.
        for (method, path, op) in operations(&document()) {
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    let name = param["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: path parameter `{name}` is not in the path"
                    );
                }
            }
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        // A `$ref` to a schema nothing registered makes the document unusable for generated
        // clients and schemathesis ("Unresolvable reference"), e.g. an enum used only in a
        // query parameter.
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, "", &mut found);
        assert!(!found.is_empty());
        for (at, target) in found {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{at}: external reference {target}"));
            assert!(
                doc.pointer(pointer).is_some(),
                "{at}: {target} does not resolve"
            );
        }
    }

    #[test]
    fn every_error_answer_is_documented_with_the_error_schema() {
        let doc = document();
        let ops = operations(&doc);
        assert!(ops.len() > 40, "the document lists the API's operations");
        for (method, path, op) in ops {
            let responses = op["responses"].as_object().unwrap();
            let has = |s: &str| responses.contains_key(s);
            let name = format!("{method} {path}");
            if op.get("security").is_some() {
                assert!(has("401") && has("403"), "{name}: 401 and 403");
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415", "422"] {
                    assert!(has(s), "{name}: {s}");
                }
            }
            if path.contains('{') {
                assert!(has("404"), "{name}: 404");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status == "500" {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorResponse",
                        "{name} {status} points at the error schema"
                    );
                }
            }
        }
        assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
    }

    #[test]
    fn login_and_disclosure_can_be_throttled() {
        let doc = document();
        for (method, path) in [
            ("post", "/v1/auth/login"),
            ("get", "/v1/data/{category}"),
            ("post", "/v1/data/{category}/lookup"),
        ] {
            assert!(
                doc["paths"][path][method]["responses"]["429"].is_object(),
                "{method} {path}"
            );
        }
    }
}
