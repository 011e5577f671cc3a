"""perfgate: a realtime job gateway on trio structured concurrency."""

__version__ = "0.1.0"
