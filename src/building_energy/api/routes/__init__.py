"""The API's routes, one module per concern, gathered into ``api_router``."""

from fastapi import APIRouter

from building_energy.api.routes import health, model, predict

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(predict.router)
api_router.include_router(model.router)
