"""Log lines an operator can read: JSON lines by default, text for a human at a terminal.

One line per event. A line carries the request it belongs to (`request_id`, set by the gateway
for each HTTP request and WebSocket, from `X-Request-Id` or generated), so every line of one
request can be found with one grep, and a client quoting the `requestId` of an error leads the
operator to it. Structured fields go in `extra=` (`log.info("...", extra={"status": 200})`) and
become JSON keys; the text format prints them as `key=value` after the message.

A traceback is printed only for what is unexpected (`log.exception`, `exc_info=`): expected
refusals (bad input, FORBIDDEN, limits) are logged by their callers as one line without one.

`LOG_FORMAT` is `json` (the default: what a log pipeline reads) or `text` (`make run` sets it);
`LOG_LEVEL` is a level name (default INFO).
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMATS = ("json", "text")
request_id: ContextVar[str | None] = ContextVar("coalition_request_id", default=None)

# What every LogRecord has; anything else on a record came from `extra=` and is a field.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id", "color_message", "taskName"}
)


def log_format() -> str:
    """The format LOG_FORMAT asks for; an unknown one stops the process with a clear message."""
    chosen = (os.environ.get("LOG_FORMAT") or "json").strip().lower()
    if chosen not in FORMATS:
        allowed = ", ".join(FORMATS)
        raise SystemExit(f"environment variable LOG_FORMAT must be one of {allowed}, got {chosen!r}")
    return chosen


def log_level() -> str:
    chosen = (os.environ.get("LOG_LEVEL") or "INFO").strip().upper()
    if not isinstance(logging.getLevelName(chosen), int):
        raise SystemExit(f"environment variable LOG_LEVEL must be a level like INFO or DEBUG, got {chosen!r}")
    return chosen


class _CurrentStderr:
    """sys.stderr as it is at each write: a progress display (`shared.console`) swaps it for a
    proxy that prints log lines above the display instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


CURRENT_STDERR = _CurrentStderr()


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request it was logged for (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES and not k.startswith("_")}


# JSON escapes every control character below U+0020 but leaves these raw when not ASCII-only, and
# many readers (Python's splitlines, JavaScript) break lines on them: one record must stay one line
# whatever a client sent (a fuzzed variable logged in an error message, say).
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, request_id, the
    record's `extra` fields, and `exception` (the traceback as text) only when one was logged."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            line["request_id"] = record.request_id
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False).translate(_LINE_BREAKS)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message key=value …`, then the traceback if there is one.
    A record whose message already says it all (`extra={"_fields_in_message": True}`, the access
    log's) prints no fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        rid = getattr(record, "request_id", None)
        if rid:
            text = text.replace(f" {record.name} ", f" {record.name} [{rid}] ", 1)
        fields = {} if getattr(record, "_fields_in_message", False) else _fields(record)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def logging_config(fmt: str | None = None, level: str | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the chosen format: everything (uvicorn's own loggers
    included) goes through one stderr handler. Handed to uvicorn as its `log_config`, so every
    worker process configures itself the same way."""
    formatter = JsonFormatter if (fmt or log_format()) == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"main": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://shared.logs.CURRENT_STDERR",
                "formatter": "main",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level or log_level()},
        "loggers": {
            # uvicorn's loggers come with handlers of their own; through the root instead.
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
        }
        # Alembic announces its dialect at every start-up check; only its warnings matter here.
        | {"alembic": {"level": "WARNING"}},
    }


def configure_logging(fmt: str | None = None, level: str | None = None) -> None:
    """For a process that is not uvicorn's (the worker, the CLI); Python's warnings and the
    exceptions it can only ignore go through logging too, formatted like every other line."""
    logging.config.dictConfig(logging_config(fmt, level))
    log_python_complaints(True)


def _log_unraisable(unraisable: Any) -> None:
    """An exception Python could only ignore (raised while an object was finalized, e.g. a
    coroutine graphql-core abandoned being closed by the garbage collector): one WARNING line, the
    exception named, instead of an "Exception ignored in" traceback as bare text on stderr."""
    logging.getLogger("coalition.unraisable").warning(
        "%s %r: %s: %s",
        unraisable.err_msg or "Exception ignored in",
        unraisable.object,
        type(unraisable.exc_value).__name__,
        unraisable.exc_value,
    )


def log_python_complaints(on: bool) -> None:
    """Warnings and unraisable exceptions as log records (on), or back to Python's defaults (off:
    at shutdown, when logging may be gone before a late complaint comes)."""
    logging.captureWarnings(on)
    sys.unraisablehook = _log_unraisable if on else sys.__unraisablehook__
