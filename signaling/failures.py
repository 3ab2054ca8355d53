"""One log line with a code for a failure of ours, never a traceback per outsider's request.

Anyone can send input that reaches a bug; a traceback per message would let them
fill the log.  The code is stable for one bug (exception type and the frame that
raised), so the operator can count and group the lines; the traceback is logged
at DEBUG for whoever reproduces it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import traceback

from aiohttp.http_exceptions import HttpProcessingError


def failure_code(exc: BaseException) -> str:
    """`E` + 8 hex digits naming the exception's type and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    where = f"{last.filename}:{last.lineno}" if last is not None else "?"
    return "E" + hashlib.sha256(f"{type(exc).__name__} {where}".encode()).hexdigest()[:8]


def log_failure(logger: logging.Logger, exc: BaseException, what: str, *args: object) -> str:
    """Log `what % args` failing with `exc` on one line (code, type, file:line); return the code."""
    code = failure_code(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"
    logger.error("%s failed: %s %s at %s", what % args, code, type(exc).__name__, where)
    logger.debug("%s traceback", code, exc_info=exc)
    return code


class _HttpParseErrorFilter(logging.Filter):
    """aiohttp logs a traceback at ERROR for every request it cannot parse (e.g. a bad
    Content-Length): outsiders' input.  Turn it into one INFO line naming the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "bad HTTP request refused (%d): %s", (exc.code, str(exc.message)[:80])
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_http_parse_errors() -> None:
    """Install the filter above on aiohttp's server logger (once)."""
    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _HttpParseErrorFilter) for f in server_logger.filters):
        server_logger.addFilter(_HttpParseErrorFilter())
