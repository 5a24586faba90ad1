"""The one log format of the command line, for its own process and for the processes it starts."""

from __future__ import annotations

import logging
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def error_summary(error: BaseException) -> str:
    """``Type: first line of the message`` of the error, or of the error it wraps: MLflow's and SQLAlchemy's
    errors run to pages (retries, SQL), and a one-line error or warning needs only what happened.

    Their wrappers repeat the driver's message, and may open with a note of their own ("raised as a result of
    Query-invoked autoflush"); the driver's one line ("attempt to write a readonly database") is the cause.
    Only those libraries' wrappers are looked through, and only when their message holds their cause's: any
    other error (the project's own, naming a store or a file; a builtin) is what the reader needs.
    """
    seen = {id(error)}
    while type(error).__module__.split(".")[0] in _WRAPPING_LIBRARIES:
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if cause is None or id(cause) in seen or not _first_line(cause) or _first_line(cause) not in str(error):
            break
        seen.add(id(cause))
        error = cause
    return f"{type(error).__name__}: {_first_line(error)[:300]}"


# Whose exceptions wrap a driver's and repeat its message: MLflow's store errors and SQLAlchemy's.
_WRAPPING_LIBRARIES = frozenset({"mlflow", "sqlalchemy"})


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


# MLflow logs a failed statement of its SQL store, SQL and traceback, at ERROR, then raises it: the command
# reports that error in one line, which the record would bury (it is for --verbose). Its retry warnings,
# which carry no traceback, stay: they say why a command waits.
_SQL_STORE_LOGGER = "mlflow.store.db.utils"


def _without_traceback(record: logging.LogRecord) -> bool:
    return record.exc_info is None


def configure_logging(level: int) -> None:
    """Log records at ``level`` and above to stderr in ``LOG_FORMAT`` (the command line's ``main``); except at
    debug level, without MLflow's records (SQL and traceback) of the SQL store errors it then raises."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    store_logger = logging.getLogger(_SQL_STORE_LOGGER)
    store_logger.removeFilter(_without_traceback)
    if level > logging.DEBUG:
        store_logger.addFilter(_without_traceback)


def process_log_config() -> dict[str, Any]:
    """This process's logging as a ``dictConfig`` for a worker process to apply at start.

    Spawned workers (``uvicorn --workers``) start with Python's default of warnings only: without it they
    would drop the API's access log and every INFO record.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"level": logging.getLevelName(logging.getLogger().getEffectiveLevel()), "handlers": ["stderr"]},
    }
