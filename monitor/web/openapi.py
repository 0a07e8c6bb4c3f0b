"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from storage.records import FindingState

_STATE_VALUES: tuple[FindingState, ...] = (
    "needs_review",
    "escalated",
    "confirmed",
    "dismissed",
    "taken_down",
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "Bad request",
        401: "No or unknown token",
        403: "Role not allowed",
        404: "Not found",
        409: "Claimed by another moderator",
    }
    return {str(c): _ok(_ref("Error"), texts[c]) for c in codes}


def _list(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref(item)}},
    }


_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_TIME = {"type": "string", "format": "date-time"}
_EVIDENCE = {
    "type": "object",
    "required": ["source", "text"],
    "properties": {
        "source": {"type": "string"},
        "text": {"type": "string"},
        "blob_sha256": {"type": ["string", "null"]},
    },
}
_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Finding": {
        "type": "object",
        "required": ["id", "source", "upload_id", "name", "artist", "score", "stage", "state"],
        "properties": {
            "id": {"type": "integer"},
            "source": {"type": "string"},
            "upload_id": {"type": "string"},
            "upload": {},
            "name": {"type": "string"},
            "artist_id": {"type": "integer"},
            "artist": {"type": "string"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "stage": {"enum": ["metadata", "probe"]},
            "state": {"enum": list(_STATE_VALUES)},
            "backscan": {"type": "boolean"},
            "evidence": {"type": "array", "items": _EVIDENCE},
            "events": {"type": "array", "items": {"type": "object"}},
            "created_at": _TIME,
            "updated_at": _TIME,
            "taken_down_at": {"anyOf": [_TIME, {"type": "null"}]},
        },
    },
    "Upload": {
        "type": "object",
        "required": ["id", "source", "upload_id", "name", "state", "artists"],
        "properties": {
            "id": {"type": "integer"},
            "source": {"type": "string"},
            "upload_id": {"type": "string"},
            "name": {"type": "string"},
            "state": {"type": "string"},
            "kind": {"type": "string"},
            "base_family": {"type": "string"},
            "artists": {"type": "array", "items": {"type": "string"}},
            "url": {"type": ["string", "null"]},
            "uploader": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]},
            "reupload_of": {"type": ["object", "null"]},
            "created_at": _TIME,
        },
    },
    "Artist": {
        "type": "object",
        "required": ["id", "name", "aliases"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "aliases": {"type": "array", "items": {"type": "string"}},
            "created_at": _TIME,
        },
    },
    "Decision": {
        "type": "object",
        "required": ["decision", "reason"],
        "properties": {
            "decision": {"enum": ["confirm", "dismiss", "escalate"]},
            "reason": {"type": "string", "minLength": 1},
        },
    },
}


def _paths() -> dict[str, Any]:
    state = {"name": "state", "in": "query", "schema": {"enum": list(_STATE_VALUES)}}
    source = {"name": "source", "in": "query", "schema": {"type": "string"}}
    return {
        "/findings": {
            "get": {
                "summary": "List findings, newest first",
                "parameters": [state, *_PAGE],
                "responses": {"200": _ok(_list("Finding")), **_errors(400, 401, 403)},
            }
        },
        "/findings/{id}": {
            "get": {
                "summary": "A finding with its upload, evidence and audit log",
                "parameters": _ID,
                "responses": {"200": _ok(_ref("Finding")), **_errors(401, 403, 404)},
            }
        },
        "/findings/{id}/decision": {
            "post": {
                "summary": "Confirm, dismiss or escalate a finding (audited)",
                "parameters": _ID,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Decision")}},
                },
                "responses": {"200": _ok(_ref("Finding")), **_errors(400, 401, 403, 404, 409)},
            }
        },
        "/uploads": {
            "get": {
                "summary": "List uploads, newest first",
                "parameters": [source, *_PAGE],
                "responses": {"200": _ok(_list("Upload")), **_errors(400, 401, 403)},
            }
        },
        "/uploads/{id}": {
            "get": {
                "summary": "One upload",
                "parameters": _ID,
                "responses": {"200": _ok(_ref("Upload")), **_errors(401, 403, 404)},
            }
        },
        "/artists": {
            "get": {
                "summary": "Registered artists",
                "responses": {"200": _ok(_list("Artist")), **_errors(401, 403)},
            }
        },
        "/artists/{id}": {
            "get": {
                "summary": "One artist",
                "parameters": _ID,
                "responses": {"200": _ok(_ref("Artist")), **_errors(401, 403, 404)},
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "stylewatch API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "from `stylewatch user token EMAIL`",
                }
            },
            "schemas": _SCHEMAS,
        },
        "paths": _paths(),
    }
