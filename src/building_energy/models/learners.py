"""The stack's base learners by name, in a module light enough for the command line's parser and the
configuration's checks to import (the learners' libraries take seconds to load)."""

from __future__ import annotations

LEARNERS: tuple[str, ...] = ("extra_trees", "xgboost", "lightgbm", "svr")
