"""Sizing against numbers worked out by hand (the same examples as docs/sizing.md)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from scalectl.plan.load import load_plan
from scalectl.plan.model import Plan
from scalectl.plan.sizing import size
from tests.conftest import fixture_path


def plan(**changes: Any) -> Plan:
    data = yaml.safe_load(Path(fixture_path("plans", "minimal.yaml")).read_text())
    data = copy.deepcopy(data)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return Plan.model_validate(data)


def test_replicas_by_hand() -> None:
    # design = 1000 × 1.2 = 1200 rps; budget = 200 × 0.75 = 150 rps; 1200 / 150 = 8.
    s = size(plan()).service("api")
    assert s.design_rps == pytest.approx(1200)
    assert s.replica_budget_rps == pytest.approx(150)
    assert (s.required_replicas, s.replicas) == (8, 8)


def test_replicas_round_up_and_clamp_to_min() -> None:
    # 100 × 1.2 / 150 = 0.8 -> 1 required, clamped up to min 2.
    s = size(plan(services__api__traffic={"peak_rps": 100, "headroom": 1.2})).service("api")
    assert (s.required_replicas, s.replicas) == (1, 2)


def test_pdb_forces_two_replicas_with_a_warning() -> None:
    sizing = size(
        plan(services__api__replicas={"min": 1, "max": 10}, services__api__traffic={"peak_rps": 10})
    )
    assert sizing.service("api").min_replicas == 2
    assert sizing.service("api").pdb_min_available == 1
    assert "services.api: replicas.min raised to 2" in sizing.warnings[0]


def test_more_than_max_replicas_is_infeasible_with_the_numbers() -> None:
    sizing = size(plan(services__api__replicas={"min": 2, "max": 6}))
    assert not sizing.feasible
    assert sizing.infeasible == [
        "services.api: needs 8 replicas for 1200 rps (1000 peak × 1.2 headroom) at 150 rps "
        "each (200 × 0.75), but replicas.max is 6"
    ]


def test_littles_law_in_flight_and_async_processes() -> None:
    # 1200 rps over 8 replicas = 150 rps each; L = 150 × 0.1 s = 15 in flight.
    s = size(plan()).service("api")
    assert s.in_flight_per_replica == pytest.approx(15)
    # async workers: one per core of the CPU limit (2).
    assert s.processes == 2
    # per process 75 rps × 0.02 s = 1.5 busy connections; / 0.75 = 2.
    assert s.pool_needed == 2


def test_sync_workers_cover_in_flight_over_utilization() -> None:
    # sync: ceil(15 / 0.75) = 20 workers per replica.
    s = size(plan(services__api__worker_class="sync")).service("api")
    assert s.processes == 20


def test_database_budget_fits() -> None:
    # 10 max replicas × 2 processes × pool max 5 = 100 > 100 − 10 = 90 available.
    sizing = size(plan())
    db = sizing.database
    assert db is not None
    assert (db.client_connections, db.available) == (100, 90)
    assert not sizing.feasible
    assert sizing.infeasible[0].startswith(
        "database: pools may open 100 connections (Σ max replicas × processes × pool.max) "
        "but the primary allows 90 (100 max_connections − 10 reserved)"
    )


def test_pgbouncer_makes_the_budget_feasible_and_is_sized() -> None:
    sizing = size(plan(database__pgbouncer={"enabled": True, "reserve_pool_size": 5}))
    db = sizing.database
    assert db is not None and sizing.feasible
    # active at peak: 1200 rps × 0.02 s = 24 connections.
    assert db.active_at_peak == 24
    assert db.pgbouncer_default_pool_size == 85  # 90 available − 5 reserve
    assert db.pgbouncer_max_client_conn == 110  # 100 clients + 10 per service


def test_active_connections_beyond_the_server_are_infeasible_even_with_pgbouncer() -> None:
    sizing = size(
        plan(
            database__pgbouncer={"enabled": True},
            services__api__capacity={
                "per_replica_rps": 200,
                "target_utilization": 0.75,
                "db_time_ms": 90,
            },
        )
    )
    # 1200 × 0.09 = 108 busy > 90 available.
    assert any("108 connections are busy at peak" in r for r in sizing.infeasible)


def test_redis_maxmemory_by_hand() -> None:
    # 1,000,000 × (1000 + 40 + 60) = 1.1e9 B × 1.5 = 1.65e9 B -> 1574 MiB (rounded up).
    cache = size(plan()).cache
    assert cache is not None
    assert cache.data_bytes == 1_100_000_000
    assert cache.maxmemory == "1574mb"
    assert cache.maxmemory_bytes == 1574 * 2**20


def test_queue_consumers_and_worker_replicas() -> None:
    sizing = size(
        plan(
            database__pgbouncer={"enabled": True},
            workers={
                "jobs": {
                    "image": "registry.example.com/jobs:1.0.0",
                    "processes": 2,
                    "threads": 4,
                    "replicas": {"min": 1, "max": 5},
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    "queues": [
                        {
                            "name": "analyse",
                            "arrival_rate": 6,
                            "mean_duration_seconds": 2.5,
                            "target_wait_seconds": 5,
                        }
                    ],
                }
            },
        )
    )
    q = sizing.queues[0]
    assert q.consumers == 22  # ceil(15 / 0.7)
    w = sizing.worker("jobs")
    assert (w.consumers_per_replica, w.required_replicas, w.replicas) == (8, 3, 3)
    assert q.max_age_seconds == 50  # default 10 × target wait
    assert q.max_depth == 300  # 6 jobs/s × 50 s


def test_high_utilization_and_at_max_warn() -> None:
    sizing = size(
        plan(
            services__api__capacity={"per_replica_rps": 200, "target_utilization": 0.85},
            services__api__replicas={"min": 2, "max": 8},
        )
    )
    # 1200 / 170 = 7.06 -> 8 = max
    assert any("target_utilization 0.85" in w for w in sizing.warnings)
    assert any("needs all 8 replicas" in w for w in sizing.warnings)


def test_retrying_on_503_warns_that_shedding_ejects_every_instance() -> None:
    assert not any("retries.on" in w for w in size(plan()).warnings)  # the default is safe
    sizing = size(plan(load_balancer={"retries": {"on": ["error", "http_503"]}}))
    [warning] = [w for w in sizing.warnings if "retries.on" in w]
    assert "lists http_503" in warning and "max_fails (3)" in warning
    assert not any(
        "retries.on" in w
        for w in size(
            plan(load_balancer={"max_fails": 0, "retries": {"on": ["http_503"]}})
        ).warnings
    )


NO_DB = fixture_path("plans", "no-db-service.yaml")


def test_services_and_workers_without_a_database_get_no_pool_and_no_budget() -> None:
    sizing = size(load_plan(NO_DB, "production").plan)
    thumbnails = sizing.service("thumbnails")  # db_time_ms: 0
    assert (thumbnails.pool_needed, thumbnails.pool_min, thumbnails.pool_max) == (0, 0, 0)
    assert thumbnails.active_db_connections == 0
    api = sizing.service("api")
    assert (api.max_replicas, api.processes, api.pool_max) == (10, 2, 4)
    db = sizing.database
    assert db is not None
    # Only api counts: 10 × 2 × 4 = 80. Before, thumbnails added 20 × 4 × 4 = 320 and the
    # resize worker (db_time_fraction: 0) 4 × 16 = 64.
    assert db.client_connections == 80
    assert db.active_at_peak == 24  # 1200 rps × 20 ms, api alone
    assert db.pgbouncer_max_client_conn == 90  # + 10 for the one service that uses it
    # Without PgBouncer the budget fits: 80 ≤ 90 available.
    data = yaml.safe_load(NO_DB.read_text())
    del data["database"]["pgbouncer"]
    assert size(Plan.model_validate(data)).feasible
