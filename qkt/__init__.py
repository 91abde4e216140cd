"""qkt: docker for trading strategies."""

__version__ = "0.14.0"
