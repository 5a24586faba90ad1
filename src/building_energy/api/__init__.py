"""The prediction API (FastAPI): ``create_app(settings)``; ``building-energy serve`` runs it."""

from building_energy.api.main import create_app

__all__ = ["create_app"]
