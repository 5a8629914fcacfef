from __future__ import annotations

from scalectl.cli import main

main()
