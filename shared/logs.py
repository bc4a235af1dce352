"""JSON log lines for platforms that parse them (Cloud Logging reads ``severity`` and ``message``)."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# Attributes every LogRecord has; anything else came in through ``extra=`` and belongs in the line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


# Credentials that could reach a log line through someone else's message (a library, an exception
# text): auth headers, password fields, and URL query parameters that sign or authorize a request.
_SECRET_PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)([\"']?(?:password|passwd|secret|access_token|token)[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&}]+"),
    re.compile(
        r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|"
        r"x-goog-credential|signature|sig|token|access_token)=)[^&\s\"']+"
    ),
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``***``."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)} ***", text)
    for pattern in _SECRET_PATTERNS[1:]:
        text = pattern.sub(lambda m: f"{m.group(1)}***", text)
    return text


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's rendered message before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: severity, message, logger, and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        line: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send the project's logs to stdout as JSON lines, once; other libraries' too, unless the host set up logging.

    Other loggers keep the root logger's level (warnings and errors).
    """
    logger = logging.getLogger("dag_trigger")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    root = logging.getLogger()
    if not root.handlers:
        # Otherwise a library's warning (through Python's last-resort handler) and Flask's report of an
        # unhandled exception (through its own handler) reach stderr as plain text: no severity, no fields,
        # and a traceback split into one Cloud Logging entry per line.
        root.addHandler(handler)
