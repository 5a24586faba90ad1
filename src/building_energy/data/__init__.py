"""Raw data: fetching, reading and validating the City's benchmarking CSV."""

from building_energy.data.io import fetch_data, read_buildings_csv, sha256_file
from building_energy.data.schema import DataValidationError, validate_raw_buildings

__all__ = [
    "DataValidationError",
    "fetch_data",
    "read_buildings_csv",
    "sha256_file",
    "validate_raw_buildings",
]
