//! The API's OpenAPI 3.1 document (`/openapi.json`).

use serde_json::{json, Value};

/// The document: every `/api/` route of the table, with its response shape.
pub fn document() -> Value {
    let notice = json!({
        "type": "object",
        "required": ["id", "name", "address", "representative", "wait_days"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "name": {"type": "string"},
            "address": {"type": "string"},
            "representative": {"type": "string"},
            "notice_start": {"type": ["string", "null"], "format": "date"},
            "notice_filing": {"type": ["string", "null"]},
            "wait_days": {"type": "integer", "minimum": 0}
        }
    });
    let registered = json!({
        "type": "object",
        "required": ["release_id", "recipient", "purpose", "kind", "date"],
        "properties": {
            "release_id": {"type": "string"},
            "recipient": {"type": "string"},
            "purpose": {"type": "string"},
            "kind": {"type": "string", "enum": ["anonymized", "pseudonymized"]},
            "date": {"type": "string", "format": "date"}
        }
    });
    let list = |summary: &str, item: &str| {
        json!({"get": {
            "summary": summary,
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {
                    "type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}
                }}}},
                "429": {"description": "Over the public rate limit"}
            }
        }})
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tokumei",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Public notices of the data providers and the register of releases."
        },
        "paths": {
            "/api/v1/notices": list("The providers' notices (公表)", "Notice"),
            "/api/v1/register": list("The register of releases", "Registered")
        },
        "components": {"schemas": {"Notice": notice, "Registered": registered}}
    })
}
