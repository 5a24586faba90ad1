"""building-energy: predict the annual site energy use of Seattle's non-residential buildings."""

__version__ = "0.1.0"
