"""scalectl: prove a web service will hold its traffic before and after it ships."""

from __future__ import annotations

__version__ = "0.1.0"
