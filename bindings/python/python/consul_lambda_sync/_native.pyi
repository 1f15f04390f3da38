"""The extension module (Rust, pyo3): the core's JSON API, unchanged."""

from typing import final

__all__ = ["LARGE_BODY_BYTES", "CoreFailure", "Engine", "__version__", "call"]

__version__: str

LARGE_BODY_BYTES: int
"""A Consul answer body longer than this goes to ``Engine.feed_body`` as bytes."""

class CoreFailure(ValueError):
    """The core reported a failure; ``args[0]`` is the failure as JSON."""

def call(function: str, input: str, /) -> str:
    """Calls the core: JSON text in, JSON text out; raises CoreFailure."""

@final
class Engine:
    """The sync engine: JSON text in and out (see ``consul_lambda_sync.Engine``)."""

    def __new__(cls, start: str) -> Engine: ...
    def next(self, now_ms: float, remaining_ms: float | None = None, /) -> str:
        """The next step as JSON."""
    def feed(self, answers: str, now_ms: float, /) -> None:
        """Feeds the answers (a JSON list) at the host's time; raises CoreFailure."""
    def feed_body(
        self, id: float, status: int, headers: str, body: bytes | bytearray, now_ms: float, /
    ) -> None:
        """Feeds one Consul answer with its body as the bytes read; raises CoreFailure."""
    def feed_chunk(self, id: float, chunk: bytes, /) -> None:
        """Takes the next bytes of a body still being read; ``feed_body`` ends it."""
