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
    let status = json!({
        "type": "object",
        "required": ["id", "application", "submitted_by", "submitted_at"],
        "properties": {
            "id": {"type": "string", "pattern": "^A-[0-9]{4,}$"},
            "application": {"type": "object", "description": "The application's fields, as its file (docs/applications.md)"},
            "submitted_by": {"type": "string"},
            "submitted_at": {"type": "string", "format": "date-time"},
            "withdrawn_at": {"type": ["string", "null"], "format": "date-time"},
            "decision": {"type": ["object", "null"], "description": "The committee's decision, once recorded"}
        }
    });
    let signed_in = |summary: &str, item: &str| {
        json!({"get": {
            "summary": summary,
            "security": [{"session": []}],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {
                    "type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}
                }}}},
                "303": {"description": "No session: to /signin"},
                "403": {"description": "The user's role may not (audited)"}
            }
        }})
    };
    let upload = json!({
        "type": "object",
        "required": ["id", "provider", "user", "size", "created_at", "offset"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "provider": {"type": "string"},
            "user": {"type": "string"},
            "size": {"type": "integer", "minimum": 1, "maximum": crate::upload::MAX_SIZE},
            "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
            "created_at": {"type": "string", "format": "date-time"},
            "offset": {"type": "integer", "minimum": 0, "description": "Bytes received so far: where the next piece starts"}
        }
    });
    let csrf = json!({"name": "X-CSRF-Token", "in": "header", "required": true, "schema": {"type": "string"},
        "description": "The session's CSRF token (the upload page's data-csrf)"});
    let one_upload = json!({"$ref": "#/components/schemas/Upload"});
    let uploads = json!({"post": {
        "summary": "Declare an upload of a sealed package (a provider's user)",
        "security": [{"session": []}],
        "parameters": [csrf],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["size"],
            "properties": {"size": {"type": "integer"}, "sha256": {"type": "string"}}
        }}}},
        "responses": {
            "201": {"description": "Declared", "content": {"application/json": {"schema": one_upload}}},
            "400": {"description": "Size, hash or number of open uploads refused"},
            "403": {"description": "CSRF token, or the user's role"}
        }
    }});
    let upload_one = json!({
        "get": {
            "summary": "An upload and its offset, to resume it",
            "security": [{"session": []}],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": one_upload}}},
                "404": {"description": "No such upload of the user's provider"}
            }
        },
        "patch": {
            "summary": "The next piece of an upload, appended at Upload-Offset and synced before the answer",
            "security": [{"session": []}],
            "parameters": [csrf, {"name": "Upload-Offset", "in": "header", "required": true, "schema": {"type": "integer"}}],
            "requestBody": {"required": true, "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {
                "204": {"description": "Appended; Upload-Offset says where the upload stands"},
                "409": {"description": "Not where the upload stands (Upload-Offset says where), or another piece is being sent"},
                "413": {"description": "The piece would pass the declared size: cut off"}
            }
        }
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tokumei",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Public notices of the data providers and the register of releases; for signed-in users, the applications they may see."
        },
        "paths": {
            "/api/v1/notices": list("The providers' notices (公表)", "Notice"),
            "/api/v1/register": list("The register of releases", "Registered"),
            "/api/v1/applications": signed_in(
                "The applications the user may see (a researcher's own; every one for the committee, technicians and auditors)",
                "Application"
            ),
            "/api/v1/uploads": uploads,
            "/api/v1/uploads/{id}": upload_one
        },
        "components": {
            "schemas": {"Notice": notice, "Registered": registered, "Application": status, "Upload": upload},
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "__Host-session"}}
        }
    })
}
