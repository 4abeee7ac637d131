"""The package version, in its own module so that nothing low has to import the package face."""

__version__ = "0.1.0"
