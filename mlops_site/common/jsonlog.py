"""Structured logs: one JSON object a line, with the correlation id the audit events carry.

`LOG_FORMAT=json` (the default when DEBUG is off) selects it in settings.LOGGING. Each line has
`timestamp` (UTC, ISO 8601), `level`, `logger`, `message`, `correlation_id` (the request's or
task's, as in the audit log; null outside both), `exception` when there is one, and any
`extra={...}` fields that are JSON-serialisable.
"""

import datetime as dt
import json
import logging

from mlops_site.common import context

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": context._correlation_id.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                try:
                    json.dumps(value)
                except (TypeError, ValueError):
                    value = repr(value)
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)
