"""lt-faceparse: benchmark and analysis library for long-tail face parsing."""

__version__ = "0.1.0"
