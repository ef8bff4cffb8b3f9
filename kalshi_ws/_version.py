"""The package version, readable without importing any dependency."""

__version__ = "1.0.0"
