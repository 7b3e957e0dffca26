"""Inferloop: inference observability and feedback loop.

Serving code imports `inferloop.sdk`; the platform's services live in the other
subpackages (`collector`, `store`, `analyzer`, `server`, ...).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
