"""uvicorn's HTTP protocol (the one it picks itself), except that a request it cannot parse is
answered like every other error of the service: JSON in OpenAI's shape, not uvicorn's plain
text. Such a request never reaches the application, so only the protocol can answer it."""

from __future__ import annotations

import json

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from contrastkit.apps.serve.errors import error_body

MALFORMED = "the request is not valid HTTP/1.1; send a JSON body with a Content-Length header"


def json_errors_protocol() -> type:
    """The class to pass as uvicorn.Config(http=...)."""
    base = import_from_string(HTTP_PROTOCOLS["auto"])

    class JsonErrors(base):
        def send_400_response(self, msg: str) -> None:  # uvicorn's name; `msg` is its text
            body = json.dumps(error_body(400, MALFORMED)).encode()
            head = [b"HTTP/1.1 400 Bad Request"]
            head += [name + b": " + value for name, value in self.server_state.default_headers]
            head += [b"content-type: application/json", b"content-length: %d" % len(body),
                     b"connection: close"]  # fmt: skip
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            self.transport.close()

    return JsonErrors
