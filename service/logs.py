"""Request ids and log lines: every log line of a request carries its ``X-Request-ID``.

:class:`RequestId`, the outermost middleware, takes the client's ``X-Request-ID`` when it is
short and made of safe characters, or makes one, keeps it in a context variable for the
request's whole handling and echoes it on the response (every response, errors included).
:class:`RequestIdFilter` puts it on every log record (``-`` outside a request), and
:func:`log_config` gives uvicorn's logging setup in text or JSON lines (``LOG_FORMAT``).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def new_ids() -> Iterator[str]:
    """Request ids unique across processes and restarts: a random prefix, then a counter.

    As unique as one ``uuid4`` per request for far less: no system call per request.
    """
    prefix = uuid.uuid4().hex[:20]
    for number in itertools.count(1):
        yield f"{prefix}{number:012x}"


request_id: ContextVar[str] = ContextVar("request_id", default="-")


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ids = new_ids()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        value = given.decode() if given and SAFE_ID.fullmatch(given) else next(self.ids)
        token = request_id.set(value)
        encoded = value.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, encoded)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the id of the request being handled, or ``-``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message (and the error)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_config(level: str, fmt: str = "text") -> dict:
    """uvicorn's logging setup plus the service's logger, request ids on every line."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": RequestIdFilter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id"]
    if fmt == "json":
        config["formatters"] = {name: {"()": JsonLines} for name in config["formatters"]}
    else:
        config["formatters"]["default"]["fmt"] = "%(levelprefix)s [%(request_id)s] %(message)s"
        access = config["formatters"]["access"]
        access["fmt"] = access["fmt"].replace("%(client_addr)s", "[%(request_id)s] %(client_addr)s")
    config["loggers"]["service"] = {"handlers": ["default"], "level": level.upper()}
    return config
