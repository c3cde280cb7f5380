"""Errors as RFC 9457 problem details (`application/problem+json`), everywhere.

Routes raise `Problem`; FastAPI's own errors (unknown route, bad method, invalid
parameters) and store outages go through the handlers here, so a client meets one error shape
with a message it can act on. A 422 lists the offending fields (`query.start`,
`body.pilots.0.id`) instead of FastAPI's default body. `document_errors` rewrites the OpenAPI
document so that it describes these responses as they are sent: media type
`application/problem+json`, the `ProblemDetails` schema, `WWW-Authenticate` on 401.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.catalog import CatalogError
from ingest.stores.base import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 406: "Not acceptable", 409: "Conflict",
           411: "Length required", 413: "Too large", 414: "Query too long",
           415: "Unsupported media type", 422: "Invalid parameters",
           429: "Too many requests",
           500: "Internal error", 503: "Unavailable"}


class FieldError(BaseModel):
    field: str = Field(description="where: query.start, path.kpi_id, body.pilots.0.id")
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = Field(None, description="the offending fields (422)")


class Problem(Exception):
    """An error answer: raise it from a route or a dependency."""

    def __init__(self, status: int, detail: str, *, errors: Sequence[FieldError] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.errors, self.headers = list(errors), headers or {}


def invalid(detail: str, *fields: str) -> Problem:
    """A 422 naming the offending fields (`query.start`)."""
    return Problem(422, detail, errors=[FieldError(field=f, message=detail) for f in fields])


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="citypilot"'})


def problem_response(request: Request, status: int, detail: str,
                     errors: Sequence[FieldError] = (),
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body = ProblemDetails(title=_TITLES.get(status, "Error"), status=status, detail=detail,
                          instance=request.url.path, errors=list(errors) or None)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status,
                        media_type=MEDIA_TYPE, headers=headers)


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(request, exc.status, exc.detail, exc.errors, exc.headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(field=_field(e.get("loc", ())), message=str(e.get("msg", "invalid")))
              for e in exc.errors()]
    names = ", ".join(e.field for e in errors[:3]) + (" ..." if len(errors) > 3 else "")
    return problem_response(request, 422, f"invalid parameters: {names}", errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource: {request.url.path} (see /docs)"
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request, headers.get("allow", headers.get("Allow", "")))
    return problem_response(request, exc.status_code, detail, headers=headers or None)


def _allowed(request: Request, named: str) -> str:
    """Every method the OpenAPI document has on this path, with those Starlette named: its
    405 names only the methods of the first route that matched the path (a GET route and a
    PUT route on one path: `Allow: GET`)."""
    methods = {m.strip() for m in named.split(",") if m.strip()}
    segments = request.url.path.rstrip("/").split("/")
    for template, item in request.app.openapi()["paths"].items():
        parts = template.rstrip("/").split("/")
        if len(parts) == len(segments) and all(
                p == s or (p.startswith("{") and p.endswith("}") and s)
                for p, s in zip(parts, segments, strict=True)):
            methods |= {m.upper() for m in item}
    return ", ".join(sorted(methods))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("store unavailable path=%s error=%s", request.url.path, exc)
    return problem_response(request, 503, f"the data store is unavailable: {exc}; try again",
                            headers={"Retry-After": "5"})


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request failed path=%s", request.url.path)
    return problem_response(request, 500, "internal error; the server log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(CatalogError, _unavailable)
    app.add_exception_handler(StoreError, _internal)
    app.add_exception_handler(Exception, _internal)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may answer with these problems."""
    return {status: {"model": ProblemDetails, "description": _TITLES.get(status, "Error")}
            for status in statuses}


_SCHEMA_REF = {"$ref": "#/components/schemas/ProblemDetails"}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx response of the OpenAPI document as actually sent (see module doc)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "401" in responses:  # a key is checked: failed ones are rate-limited
                responses.setdefault("429", {})
            responses.setdefault("414", {})  # the size limits of `api.guard`, on every route
            if "requestBody" in operation:
                responses.setdefault("411", {})
                responses.setdefault("413", {})
            for status, response in responses.items():
                if not str(status).isdigit() or int(status) < 400:
                    continue
                response["content"] = {MEDIA_TYPE: {"schema": _SCHEMA_REF}}
                response["description"] = _TITLES.get(int(status), response.get(
                    "description", "Error"))
                if int(status) == 401:
                    response["headers"] = {"WWW-Authenticate": {
                        "schema": {"type": "string"}, "description": "Bearer"}}
                if int(status) == 429:
                    response["headers"] = {"Retry-After": {
                        "schema": {"type": "integer"}, "description": "seconds to wait"}}
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
