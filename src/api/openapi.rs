//! The OpenAPI 3.0 document at `/api/v1/openapi.json`, built from [`super::routes`], the
//! same list the router is built from: one operation per method of every route, its
//! summary, the scope it needs (`x-required-scope`) and its parameters.

use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::{routes, ApiRoute, Verb};

pub(super) const ROUTES: &[ApiRoute] = &[ApiRoute {
    path: "/api/v1/openapi.json",
    scope: None,
    summary: "This document",
    methods: &[(Verb::Get, |m| on(m, document))],
    parameters: None,
}];

/// The document.
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for route in routes() {
        let mut ops = serde_json::Map::new();
        for (verb, _) in route.methods {
            let mut op = json!({
                "summary": route.summary,
                "responses": {
                    "200": {"description": "OK"},
                    "400": {"description": "A parameter is not allowed or not valid"},
                    "401": {"description": "Missing or unknown token"},
                    "403": {"description": "The token's scope is too small"},
                    "404": {"description": "Not found for this token"}
                }
            });
            if let Some(scope) = route.scope {
                op["security"] = json!([{"bearer": []}]);
                op["x-required-scope"] = json!(scope.as_str());
            }
            if let Some(parameters) = route.parameters {
                op["parameters"] = parameters();
            } else if route.path.contains("{id}") {
                op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
            }
            ops.insert(verb.name().to_owned(), op);
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
