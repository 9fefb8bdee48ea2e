//! Request extractors that turn every way a body can be wrong into our error format. Serde's own
//! messages may quote the offending value, so they are never passed on: only the JSON path and
//! the kind of problem are. The callers (`Principal`, `DepartmentCaller`) are authenticated
//! here by `auth::Authenticator`, from the application state.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::auth::{Authenticator, Connection, DepartmentCaller, Principal};
use crate::error::Error;
use crate::state::AppState;

fn authenticator(state: &AppState) -> Authenticator<'_> {
    Authenticator {
        tokens: &state.tokens,
        store: &state.store,
        known_clients: &state.known_clients,
        access: &state.access,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Connection {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Connection>()
            .cloned()
            .ok_or_else(|| Error::Internal("request without connection info".to_owned()))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let connection = parts.extensions.get::<Connection>();
        authenticator(state)
            .principal(&parts.headers, connection)
            .await
    }
}

impl FromRequestParts<AppState> for DepartmentCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let connection = parts.extensions.get::<Connection>();
        authenticator(state)
            .department_caller(&parts.headers, connection)
            .await
    }
}

/// A query string, deserialized as `ApiJson` bodies are: a problem names the parameter (never
/// its value) and answers the JSON error body (400 `bad_request`), never axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                Error::BadRequest(if path.is_empty() || path == "." {
                    // Unknown or missing parameters: serde names them in its message, which
                    // quotes only parameter names, never values.
                    format!("invalid query string: {}", query_problem(&e.into_inner()))
                } else {
                    format!("query parameter `{path}` is not valid")
                })
            })
    }
}

/// serde's message for a query string as a whole: only the unknown-field and missing-field
/// messages are passed on (they quote parameter names); anything else is summarised.
fn query_problem(e: &serde_urlencoded::de::Error) -> String {
    let text = e.to_string();
    if text.starts_with("unknown field") || text.starts_with("missing field") {
        text.split(", expected")
            .next()
            .unwrap_or("malformed")
            .to_owned()
    } else {
        "malformed".to_owned()
    }
}

/// A path parameter; a rejection answers the JSON error body (400 `bad_request`).
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(Error::from)
    }
}

/// A JSON body, deserialized with the failing path reported (`records[3].grid`), never the value.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(Error::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

fn body_rejection(rejection: BytesRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge
    } else {
        Error::BadRequest("could not read the request body".to_owned())
    }
}

/// Deserialize `bytes`, reporting syntax errors by position and shape errors by path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            // Trailing garbage after the value is a syntax error too.
            de.end().map_err(|e| syntax_error(&e))?;
            Ok(v)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => Err(shape_error(&path, &inner)),
                _ => Err(syntax_error(&inner)),
            }
        }
    }
}

fn syntax_error(e: &serde_json::Error) -> Error {
    Error::BadRequest(format!(
        "request body is not valid JSON (line {}, column {})",
        e.line(),
        e.column()
    ))
}

/// Serde data errors: keep only messages that cannot contain a value.
fn shape_error(path: &str, e: &serde_json::Error) -> Error {
    let text = e.to_string();
    let problem = if text.starts_with("missing field") || text.starts_with("unknown field") {
        // These quote a field *name* (from our schema or the client's keys), never a value.
        text.split(" at line")
            .next()
            .unwrap_or("invalid")
            .to_owned()
    } else if text.starts_with("invalid type") {
        "wrong type".to_owned()
    } else {
        "invalid value".to_owned()
    };
    let field = if path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    Error::validation(field, problem)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        grid: String,
        count: u32,
    }

    #[test]
    fn wrong_type_names_path_but_not_value() {
        let err = parse_json::<Shape>(br#"{"grid": "x", "count": "13812345678"}"#).unwrap_err();
        let Error::Validation(details) = err else {
            panic!("expected validation error")
        };
        assert_eq!(details[0].field, "count");
        assert!(!details[0].problem.contains("13812345678"));
    }

    #[test]
    fn syntax_error_is_bad_request() {
        assert!(matches!(
            parse_json::<Shape>(b"{\"grid\": "),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Shape>(br#"{"grid":"a","count":1} trailing"#),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse_json::<Shape>(br#"{"grid":"a","count":1,"extra":2}"#).unwrap_err();
        let Error::Validation(details) = err else {
            panic!("expected validation error")
        };
        assert!(details[0].problem.contains("extra"));
    }
}
