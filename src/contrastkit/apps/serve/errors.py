"""Every error the service answers with has one shape, OpenAI's:

    {"error": {"message": "one sentence", "type": "invalid_request_error", "param": null,
               "code": null}}

`ApiError` is raised by the routes; the handlers here turn it, user errors, FastAPI's
validation errors and Starlette's 404/405 into that shape. A bug is answered 500 with a
sentence and logged with its traceback on the server, never sent to the client."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from contrastkit.errors import UserError

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "limit_exceeded",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An answer other than 2xx: `status`, one sentence, and optionally the request field it
    concerns (`param`) and a short machine-readable `code` (e.g. the limit's name)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.param, self.code, self.headers)


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = error_body(status, message, param, code)
    return JSONResponse(body, status_code=status, headers=headers)


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict:
    """{"error": {...}}: the body of every error answer, `message` on one line."""
    line = " ".join(str(message).split())
    error = {"message": line, "type": TYPES.get(status, "server_error"), "param": param}
    return {"error": {**error, "code": code}}


def validation_message(exc: RequestValidationError) -> tuple[int, str, str | None]:
    """(status, sentence, param) for the first problem FastAPI found in a request."""
    first = exc.errors()[0] if exc.errors() else {"msg": "the request is invalid", "loc": ()}
    if first.get("type") == "json_invalid":
        return 400, "the request body is not valid JSON", None
    where = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    param = ".".join(where) or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = "the field is required"
    if param is None:
        if first.get("type") in ("model_attributes_type", "dict_type", "missing"):
            message = "send a JSON object with the header Content-Type: application/json"
        return 422, f"the request body is invalid: {message}", None
    return 422, f"{param}: {message}", param


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = validation_message(exc)
        return error_response(status, message, param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            message = f"there is no {where}; the endpoints are listed at /docs"
        elif exc.status_code == 405:
            allowed = exc.headers.get("Allow", "") if exc.headers else ""
            message = (
                f"{where} is not allowed; {request.url.path} takes {allowed or 'another method'}"
            )
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, headers=exc.headers)
