"""Property-based tests over /openapi.json: no input makes the app answer 5xx, and every
answer matches its documented schema and content type."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.reference_app.cluster import Cluster

pytestmark = pytest.mark.stack

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_no_server_errors_for_generated_requests(cluster: Cluster, tmp_path: Path) -> None:
    """With a key (the API answers 401 to everything else); ignored_auth also sends each
    request without it and with a wrong one, and fails if the API still answers."""
    key, _ = cluster.mint()
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{cluster.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,ignored_auth",
            "--max-examples",
            "20",  # per operation and phase: ~500 requests, ~15 s
            "--request-timeout",
            "5",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
