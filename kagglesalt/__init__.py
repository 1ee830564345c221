"""kagglesalt: train, ensemble and submit models for the TGS Salt Identification Challenge."""

__version__ = "0.1.0"
