"""The package version (one home: the package, the CLI, reports and written files)."""

__version__ = "0.1.0"
