"""The one log format of the command line, for its own process and for the processes it starts."""

from __future__ import annotations

import logging
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def error_summary(error: BaseException) -> str:
    """``Type: first line of the message``: MLflow's and SQLAlchemy's errors run to pages (retries, SQL), and a
    one-line error or warning needs only what happened."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:300] if text else ''}"


def configure_logging(level: int) -> None:
    """Log records at ``level`` and above to stderr in ``LOG_FORMAT`` (the command line's ``main``)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


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
