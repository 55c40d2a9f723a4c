"""KSeF 2.0 simulator (placeholder docstring, replaced below)."""
from .server import Simulator, start_subprocess, stop_subprocess  # noqa: F401
