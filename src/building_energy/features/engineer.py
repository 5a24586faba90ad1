"""Engineered features: what a building's age, size, shape and place say about its energy use."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from building_energy.features.frames import check_fitted_columns, check_training_frame
from building_energy.preprocessing.categories import split_use_types

EARTH_RADIUS_KM = 6371.0088
# Shares, not areas: the cluster describes a building's make-up, so a bigger twin lands in the same one
# and the model stays monotone in floor area.
_SURFACE_COLUMNS = ["ParkingShare", "LargestUseShare", "SecondUseShare", "Floors_log"]
# Features that grow with floor area; every learner is constrained to be non-decreasing in them.
SIZE_FEATURES: tuple[str, ...] = (
    "PropertyGFATotal",
    "PropertyGFAParking",
    "PropertyGFABuilding(s)",
    "LargestPropertyUseTypeGFA",
    "SecondLargestPropertyUseTypeGFA",
    "ThirdLargestPropertyUseTypeGFA",
    "PropertyGFATotal_log",
    "BuildingGFAPerFloor_log",
)


def haversine_distance(
    lat1: np.ndarray | pd.Series | float,
    lon1: np.ndarray | pd.Series | float,
    lat2: np.ndarray | pd.Series | float,
    lon2: np.ndarray | pd.Series | float,
) -> np.ndarray:
    """Great-circle distance in kilometres between points given in degrees."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlambda = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=float)


def add_building_age(buildings: pd.DataFrame, reference_year: int) -> pd.DataFrame:
    """``BuildingAge`` in years at ``reference_year`` (the data year), never negative."""
    out = buildings.copy()
    out["BuildingAge"] = (reference_year - out["YearBuilt"]).clip(lower=0)
    return out


def add_geographical_features(buildings: pd.DataFrame, centre_lat: float, centre_lon: float) -> pd.DataFrame:
    """Distance to downtown and direction from it, plus rotated coordinates trees can split diagonally on.

    ``BearingToDowntown`` is, despite its name, the angle of the building seen from downtown, in degrees
    counter-clockwise from east (90 due north, -90 due south), not a compass bearing. Saved models read it by
    that name, so it keeps it."""
    out = buildings.copy()
    lat, lon = out["Latitude"], out["Longitude"]
    out["DistanceToDowntownKm"] = haversine_distance(lat, lon, centre_lat, centre_lon)
    out["BearingToDowntown"] = np.degrees(np.arctan2(lat - centre_lat, lon - centre_lon))
    out["LatPlusLon"] = lat + lon
    out["LatMinusLon"] = lat - lon
    return out


def add_surface_features(buildings: pd.DataFrame) -> pd.DataFrame:
    """Size and shape: log areas, parking share, area per floor, the largest use's share, use count."""
    out = buildings.copy()
    total = out["PropertyGFATotal"].where(out["PropertyGFATotal"] > 0)
    floors = out["NumberofFloors"].where(out["NumberofFloors"] > 0)
    building_gfa = out["PropertyGFABuilding(s)"].fillna(total)
    out["PropertyGFATotal_log"] = np.log1p(total)
    out["ParkingShare"] = (out["PropertyGFAParking"] / total).clip(0, 1)
    out["BuildingGFAPerFloor_log"] = np.log1p(building_gfa / floors)
    out["LargestUseShare"] = (out["LargestPropertyUseTypeGFA"] / total).clip(0, 2)
    out["SecondUseShare"] = (out["SecondLargestPropertyUseTypeGFA"] / total).clip(0, 2)
    out["Floors_log"] = np.log1p(out["NumberofFloors"].clip(lower=0))
    out["NumberOfUseTypes"] = out["ListOfAllPropertyUseTypes"].map(lambda v: float(len(split_use_types(v))))
    return out.drop(columns=["ListOfAllPropertyUseTypes"])


def fit_surface_clusters(buildings: pd.DataFrame, n_clusters: int, random_state: int) -> tuple[StandardScaler, KMeans]:
    """K-means over the make-up of the floor area; fitted on training rows only."""
    surfaces = buildings[_SURFACE_COLUMNS].fillna(buildings[_SURFACE_COLUMNS].median()).fillna(0.0)
    scaler = StandardScaler().fit(surfaces)
    kmeans = KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state).fit(scaler.transform(surfaces))
    return scaler, kmeans


def add_surface_cluster(
    buildings: pd.DataFrame, scaler: StandardScaler, kmeans: KMeans, fill_values: pd.Series
) -> pd.DataFrame:
    """``SurfaceCluster``: the floor-area make-up group the fitted k-means puts each building in."""
    out = buildings.copy()
    surfaces = out[_SURFACE_COLUMNS].fillna(fill_values).fillna(0.0)
    out["SurfaceCluster"] = kmeans.predict(scaler.transform(surfaces)).astype(float)
    return out


def engineer_features(
    buildings: pd.DataFrame, reference_year: int, centre_lat: float, centre_lon: float
) -> pd.DataFrame:
    """Every feature that needs no fitting; ``BuildingFeatures`` adds the fitted surface cluster."""
    out = add_building_age(buildings, reference_year)
    out = add_geographical_features(out, centre_lat, centre_lon)
    # A ratio of in-range inputs can still overflow (a subnormal floor count): infinity is no measurement,
    # so it goes to the imputer like any missing value instead of failing the whole batch.
    out = add_surface_features(out)
    numeric = out.select_dtypes("number").columns
    out[numeric] = out[numeric].replace([np.inf, -np.inf], np.nan)
    return out


class BuildingFeatures(TransformerMixin, BaseEstimator):
    """Adds the engineered features to ``CleanBuildings`` output; the clusters learn from fit's rows only."""

    def __init__(
        self,
        reference_year: int = 2016,
        centre_lat: float = 47.6097,
        centre_lon: float = -122.3422,
        n_surface_clusters: int = 6,
        random_state: int = 42,
    ) -> None:
        self.reference_year = reference_year
        self.centre_lat = centre_lat
        self.centre_lon = centre_lon
        self.n_surface_clusters = n_surface_clusters
        self.random_state = random_state

    def _engineer(self, X: pd.DataFrame) -> pd.DataFrame:
        return engineer_features(X, self.reference_year, self.centre_lat, self.centre_lon)

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        check_training_frame(self, X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        engineered = self._engineer(X)
        self.surface_fill_ = engineered[_SURFACE_COLUMNS].median()
        self.surface_scaler_, self.surface_kmeans_ = fit_surface_clusters(
            engineered, self.n_surface_clusters, self.random_state
        )
        self.output_columns_ = [*engineered.columns, "SurfaceCluster"]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "surface_kmeans_")
        check_fitted_columns(self, X)
        engineered = self._engineer(X)
        return add_surface_cluster(engineered, self.surface_scaler_, self.surface_kmeans_, self.surface_fill_)[
            self.output_columns_
        ]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "output_columns_")
        return np.asarray(self.output_columns_, dtype=object)
