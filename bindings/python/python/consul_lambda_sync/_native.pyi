"""The extension module (Rust, pyo3): the core's JSON API, unchanged."""

__all__ = ["CoreFailure", "__version__", "call"]

__version__: str

class CoreFailure(ValueError):
    """The core reported a failure; ``args[0]`` is the failure as JSON."""

def call(function: str, input: str, /) -> str:
    """Calls the core: JSON text in, JSON text out; raises CoreFailure."""
