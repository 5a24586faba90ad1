"""The Streamlit dashboard: predict one building, score a file, inspect the model, explore the data.

``app.py`` is the entry point passed to ``streamlit run`` (``building-energy dashboard`` does it); the pages
live in ``views/``; ``analysis.py`` holds the computations (no Streamlit), ``shared.py`` the cached loaders.
"""

from __future__ import annotations

from pathlib import Path

APP_FILE = Path(__file__).with_name("app.py")
