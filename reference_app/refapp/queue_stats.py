"""Queue depth, age and dead letters, read straight from the Redis broker's keys.

For /metrics and /health/queue in the web tier: synchronous (call it from a thread in
async code), two round trips to Redis whatever the backlog, and a short socket timeout.
An empty queue gives zeros; an unreachable Redis raises redis.RedisError, for the caller
to report as unhealthy.

Key layout (dramatiq/brokers/redis/dispatch.lua), with N = refapp.broker.NAMESPACE:
    N:<queue>           list of message ids waiting, oldest at the head (RPUSH, LPOP)
    N:<queue>.msgs      hash id -> message, for waiting *and* fetched-but-unacked ones
    N:<queue>.DQ.msgs   hash of delayed messages (retry backoff, send with delay)
    N:<queue>.XQ        sorted set of dead-lettered ids, by time of death
"""

from __future__ import annotations

import functools
import json
import time

import redis

from refapp import settings
from refapp.broker import NAMESPACE, QUEUES

FIELDS = ("depth", "in_flight", "delayed", "dead_letters", "oldest_age_seconds")


@functools.lru_cache(maxsize=4)
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def snapshot(
    url: str | None = None, timeout: float = 0.5, queues: tuple[str, ...] = QUEUES
) -> dict[str, dict[str, float]]:
    """Per queue:
    depth              messages waiting in Redis, not yet fetched by any worker
    in_flight          fetched by a worker (prefetched or running), not yet acked
    delayed            waiting out a retry backoff or a send delay
    dead_letters       in the dead-letter queue (kept 7 days by Dramatiq)
    oldest_age_seconds age of the message at the head of the queue, from Dramatiq's
                       message_timestamp (its first enqueue: a retried job keeps its age)
    """
    # The same fallback as refapp.broker, so both read the Redis the workers consume.
    client = _client(url or settings.get().broker_url or "redis://127.0.0.1:6379/0", timeout)
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            key = f"{NAMESPACE}:{queue}"
            pipe.llen(key)
            pipe.hlen(f"{key}.msgs")
            pipe.hlen(f"{key}.DQ.msgs")
            pipe.zcard(f"{key}.XQ")
            pipe.lindex(key, 0)
        counts = pipe.execute()

    stats: dict[str, dict[str, float]] = {}
    heads: dict[str, bytes] = {}
    for i, queue in enumerate(queues):
        depth, stored, delayed, dead, head = counts[i * 5 : i * 5 + 5]
        stats[queue] = {
            "depth": float(depth),
            # .msgs holds the waiting ones too; the difference has been fetched.
            "in_flight": float(max(0, stored - depth)),
            "delayed": float(delayed),
            "dead_letters": float(dead),
            "oldest_age_seconds": 0.0,
        }
        if head is not None:
            heads[queue] = head

    if heads:
        with client.pipeline(transaction=False) as pipe:
            for queue, message_id in heads.items():
                pipe.hget(f"{NAMESPACE}:{queue}.msgs", message_id)
            bodies = pipe.execute()
        now_ms = time.time() * 1000
        for queue, body in zip(heads, bodies, strict=True):
            # None: a worker fetched it between the two round trips; the queue's next
            # message is younger, and 0 understates for one scrape only.
            timestamp = _timestamp_ms(body)
            if timestamp is not None:
                stats[queue]["oldest_age_seconds"] = max(0.0, (now_ms - timestamp) / 1000)
    return stats


def _timestamp_ms(body: bytes | None) -> float | None:
    if body is None:
        return None
    try:
        # Dramatiq's default JSONEncoder; message_timestamp is epoch milliseconds.
        return float(json.loads(body)["message_timestamp"])
    except (ValueError, KeyError, TypeError):
        return None
