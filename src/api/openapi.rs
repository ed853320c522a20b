//! The OpenAPI 3.0 document at `/api/v1/openapi.json`, built from [`super::routes`], the
//! same list the router is built from: one operation per method of every route, its
//! summary, the scope it needs (`x-required-scope`) and its parameters.

use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::{routes, ApiRoute, Op, Verb};

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/openapi.json",
    summary: "This document",
    methods: &[Op {
        verb: Verb::Get,
        scope: None,
        handler: |m| on(m, document),
    }],
    parameters: None,
}];

/// The document.
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for route in routes() {
        let mut ops = serde_json::Map::new();
        for op in route.methods {
            let mut doc = json!({
                "summary": route.summary,
                "responses": {
                    "200": {"description": "OK"},
                    "400": {"description": "A parameter is not allowed or not valid"},
                    "401": {"description": "Missing or unknown token"},
                    "403": {"description": "The token's scope is too small"},
                    "404": {"description": "Not found for this token"}
                }
            });
            if let Some(scope) = route.scope() {
                doc["security"] = json!([{"bearer": []}]);
                doc["x-required-scope"] = json!(scope.as_str());
            }
            if let Some(parameters) = route.parameters {
                doc["parameters"] = parameters();
            } else if route.path.contains("{id}") {
                doc["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
            }
            ops.insert(op.verb.name().to_owned(), doc);
        }
        paths.insert(route.path.to_owned(), Value::Object(ops));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "pixeltrack API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths
    })
}

async fn document() -> Json<Value> {
    Json(openapi())
}
