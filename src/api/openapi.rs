//! The OpenAPI 3.0 document at `/api/v1/openapi.json`, built from [`super::routes`], the
//! same list the router is built from: one operation per method of every route, with its
//! summary, the scope it needs (`x-required-scope`, per operation: a path may serve a
//! read and a write), its path and query parameters (path ones always required), its
//! request body, and its success status (201 where it creates) with the response's
//! schema. The shared schemas live here, under `components/schemas`;
//! `tests/integration/api.rs` validates the whole document with a maintained validator.

use axum::routing::on;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{routes, ApiRoute, Op, Verb};

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/openapi.json",
    summary: "This document",
    methods: &[Op {
        verb: Verb::Get,
        scope: None,
        handler: |m| on(m, document),
        status: 200,
        query: None,
        body: None,
        returns: Some(any_object),
        media: "application/json",
    }],
    parameters: None,
}];

/// `{"$ref": "#/components/schemas/<name>"}`.
pub(super) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// An object whose members are not listed here (this document, a large report).
pub(super) fn any_object() -> Value {
    json!({"type": "object", "additionalProperties": true})
}

pub(super) fn site() -> Value {
    schema_ref("Site")
}

pub(super) fn sites() -> Value {
    json!({"type": "array", "items": schema_ref("Site")})
}

pub(super) fn campaign() -> Value {
    schema_ref("Campaign")
}

pub(super) fn campaigns() -> Value {
    json!({"type": "array", "items": schema_ref("Campaign")})
}

/// The query parameter `site` (a key or domain; optional when the token sees one site).
pub(super) fn site_param() -> Value {
    json!({"name": "site", "in": "query", "required": false, "schema": {"type": "string"},
           "description": "site key or domain; may be left out when the token sees one site"})
}

/// `from` and `to`, whole UTC days.
pub(super) fn date_params() -> [Value; 2] {
    [
        json!({"name": "from", "in": "query", "required": false, "schema": {"type": "string", "format": "date"}}),
        json!({"name": "to", "in": "query", "required": false, "schema": {"type": "string", "format": "date"}}),
    ]
}

/// `{"<key>": <type>}`: a one-member answer such as `{"deleted": 3}`.
pub(super) fn one(key: &str, ty: &str) -> Value {
    json!({"type": "object", "required": [key], "properties": {key: {"type": ty}}})
}

fn components() -> Value {
    let nullable_string = json!({"type": "string", "nullable": true});
    json!({
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Site": {
                "type": "object",
                "required": ["key", "domain", "name"],
                "properties": {
                    "key": {"type": "string", "description": "the site key pixels and the tracker send"},
                    "domain": {"type": "string"},
                    "name": {"type": "string"},
                    "matomo_id": {"type": "integer", "nullable": true}
                }
            },
            "Money": {
                "type": "object",
                "required": ["amount", "currency"],
                "properties": {"amount": {"type": "string"}, "currency": {"type": "string"}}
            },
            "Campaign": {
                "type": "object",
                "required": ["id", "site_id", "name"],
                "properties": {
                    "id": {"type": "integer"},
                    "site_id": {"type": "integer"},
                    "site_key": nullable_string,
                    "site_name": nullable_string,
                    "name": {"type": "string"},
                    "sent_ms": {"type": "integer", "nullable": true},
                    "delivered": {"type": "integer", "nullable": true},
                    "cost": {"allOf": [schema_ref("Money")], "nullable": true}
                }
            },
            "Row": {
                "type": "object",
                "required": ["value", "visitors", "visits", "pageviews", "events"],
                "properties": {
                    "value": {"type": "string"},
                    "visitors": {"type": "integer"},
                    "visits": {"type": "integer"},
                    "pageviews": {"type": "integer"},
                    "events": {"type": "integer"},
                    "scroll_depth": {"type": "number", "nullable": true},
                    "engagement_time": {"type": "number", "nullable": true}
                }
            }
        }
    })
}

/// Every `{name}` of a path, as a required path parameter.
fn path_params(path: &str) -> Vec<Value> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn operation_id(verb: Verb, path: &str) -> String {
    let tail: String = path
        .trim_start_matches("/api/v1/")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}_{}", verb.name(), tail.trim_matches('_'))
}

fn operation(route: &ApiRoute, op: &Op) -> Value {
    let error = || json!({"application/json": {"schema": schema_ref("Error")}});
    let mut responses = Map::new();
    let success = match op.returns {
        Some(f) if op.media == "application/json" => {
            json!({"description": "OK", "content": {"application/json": {"schema": f()}}})
        }
        Some(f) => json!({"description": "OK", "content": {op.media: {"schema": f()}}}),
        None => json!({"description": "OK"}),
    };
    responses.insert(op.status.to_string(), success);
    let mut fail = |code: &str, what: &str| {
        responses.insert(
            code.into(),
            json!({"description": what, "content": error()}),
        );
    };
    fail("400", "A parameter or the body is not allowed or not valid");
    if op.scope.is_some() {
        fail("401", "Missing or unknown token");
        fail("403", "The token's scope is too small");
    }
    fail("404", "Not found for this token");
    let mut doc = json!({
        "operationId": operation_id(op.verb, route.path),
        "summary": route.summary,
        "responses": responses,
    });
    if let Some(scope) = op.scope {
        doc["security"] = json!([{"bearer": []}]);
        doc["x-required-scope"] = json!(scope.as_str());
    }
    let mut params = path_params(route.path);
    for list in [route.parameters, op.query].into_iter().flatten() {
        if let Value::Array(more) = list() {
            params.extend(more);
        }
    }
    if !params.is_empty() {
        doc["parameters"] = Value::Array(params);
    }
    if let Some(body) = op.body {
        doc["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": body()}}
        });
    }
    doc
}

/// The document.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        let mut ops = Map::new();
        for op in route.methods {
            ops.insert(op.verb.name().to_owned(), operation(route, op));
        }
        paths.insert(route.path.to_owned(), Value::Object(ops));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "pixeltrack API", "version": env!("CARGO_PKG_VERSION")},
        "components": components(),
        "paths": paths
    })
}

async fn document() -> Json<Value> {
    Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_are_required_and_ids_unique() {
        assert_eq!(
            path_params("/api/v1/campaigns/{id}/sent"),
            vec![
                json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
            ]
        );
        let doc = openapi();
        let mut ids = std::collections::HashSet::new();
        for (_, ops) in doc["paths"].as_object().unwrap() {
            for (_, op) in ops.as_object().unwrap() {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()));
            }
        }
    }
}
