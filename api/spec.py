"""OpenAPI 3.1 generated from the routes' declarations and the pydantic models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .schemas import ProblemDetail


@dataclass
class Param:
    name: str
    where: str  # path | query | header
    schema: dict
    description: str = ""
    required: bool = False


@dataclass
class Operation:
    method: str
    path: str  # OpenAPI style: /v1/users/{user_id}/tribes
    summary: str
    tag: str
    responses: dict[int, type[BaseModel] | str | None]
    params: list[Param] = field(default_factory=list)
    body: type[BaseModel] | dict | None = None
    body_description: str = ""
    secured: bool = True


REGISTRY: list[Operation] = []


def operation(**kwargs: Any) -> Operation:
    op = Operation(**kwargs)
    REGISTRY.append(op)
    return op


_REASONS = {
    400: "Bad request",
    401: "Missing or wrong API key",
    404: "Not found",
    410: "Stale cursor",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid events",
    429: "Too many requests",
    503: "Not ready",
}


def build_spec(title: str, version: str, *, secured: bool) -> dict:
    models: set[type[BaseModel]] = {ProblemDetail}
    for op in REGISTRY:
        for r in op.responses.values():
            if isinstance(r, type):
                models.add(r)
        if isinstance(op.body, type):
            models.add(op.body)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "serialization") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    schemas = defs.get("$defs", {})
    paths: dict[str, dict] = {}
    for op in REGISTRY:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": _op_id(op),
            "responses": {},
        }
        if op.params:
            entry["parameters"] = [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in op.params
            ]
        if op.body is not None:
            body_schema = (
                {"$ref": f"#/components/schemas/{op.body.__name__}"}
                if isinstance(op.body, type)
                else op.body
            )
            entry["requestBody"] = {
                "required": True,
                "description": op.body_description,
                "content": {"application/json": {"schema": body_schema}},
            }
        for status, model in op.responses.items():
            if isinstance(model, type):
                content = {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                    }
                }
                entry["responses"][str(status)] = {
                    "description": model.__doc__ or "OK",
                    "content": content,
                }
            elif model == "text":
                entry["responses"][str(status)] = {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            elif model == "html":
                entry["responses"][str(status)] = {
                    "description": "OK",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            else:
                entry["responses"][str(status)] = {"description": "OK"}
        problems = (
            {400, 404, 500}
            | ({401, 429} if op.secured and secured else set())
            | {s for s in op.responses if s >= 400}
        )
        for status in sorted(problems):
            entry["responses"].setdefault(
                str(status),
                {
                    "description": _REASONS.get(status, "Error"),
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/ProblemDetail"}
                        }
                    },
                },
            )
        if op.secured and secured:
            entry["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Conversation-first tribe matching: people to talk with and conversations to join.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if secured:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return spec


def _op_id(op: Operation) -> str:
    parts = [p.strip("{}") for p in op.path.strip("/").split("/") if p]
    return op.method.lower() + "_" + "_".join(parts).replace("-", "_").replace(".", "_")
