"""The reference app's queue side: analysis functions (pure), then real Dramatiq workers on
real Redis and PostgreSQL: chaining, exactly-once after SIGKILL, retries into dead letters,
the stuck-job sweep, and the queue figures the web tier exports."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from refapp import analysis, cachekeys, queue_stats, tasks

from scalectl.stack.servers import Server
from tests.reference_app.queue_fixtures import (
    Worker,
    add_job,
    fresh_database,
    fresh_redis,
    global_broker,
    job,
    render_job,
    start_worker,
    wait_until,
)

# --- analysis: numbers checked by hand -----------------------------------------------------

SIMPLE = "The cat sat on the mat. The dog ran!"


def test_tokenize_and_counts() -> None:
    words = analysis.tokenize(SIMPLE)
    assert words == ["the", "cat", "sat", "on", "the", "mat", "the", "dog", "ran"]
    assert analysis.tokenize("Don't stop—it's 2024, OK?") == ["don't", "stop", "it's", "2024", "ok"]
    assert analysis.sentence_count(SIMPLE) == 2
    assert analysis.sentence_count("no terminal punctuation") == 1
    assert analysis.sentence_count("...") == 0


@pytest.mark.parametrize(
    ("word", "expected"),
    [("cat", 1), ("the", 1), ("make", 1), ("table", 2), ("syllable", 3), ("readability", 5)],
)
def test_syllables(word: str, expected: int) -> None:
    assert analysis.syllables(word) == expected


def test_flesch_reading_ease() -> None:
    # 9 words, 2 sentences, 9 syllables: 206.835 - 1.015 × 4.5 - 84.6 × 1 = 117.6675
    assert analysis.flesch_reading_ease(SIMPLE) == pytest.approx(117.6675)
    # "Readability matters." 2 words, 1 sentence, 5 + 2 syllables:
    # 206.835 - 1.015 × 2 - 84.6 × 3.5 = -91.295
    assert analysis.flesch_reading_ease("Readability matters.") == pytest.approx(-91.295)
    assert analysis.flesch_reading_ease("") == 0.0


def test_top_terms_filter_stopwords_and_break_ties_alphabetically() -> None:
    words = analysis.tokenize("Python and python, then Rust; the rust of 2 bytes. A python!")
    assert analysis.top_terms(words, n=2) == [("python", 3), ("rust", 2)]
    assert analysis.top_terms(analysis.tokenize(SIMPLE)) == [
        ("cat", 1),
        ("dog", 1),
        ("mat", 1),
        ("ran", 1),
        ("sat", 1),
    ]


def test_digest_rounds() -> None:
    # FIPS 180-2 test vector for "abc"
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert analysis.digest("abc") == abc
    assert analysis.digest("abc", 2) == hashlib.sha256(bytes.fromhex(abc)).hexdigest()
    with pytest.raises(ValueError):
        analysis.digest("abc", 0)


def test_analyse_and_render_escape_html() -> None:
    result = analysis.analyse(SIMPLE, work_factor=3)
    assert (result.word_count, result.unique_words) == (9, 7)
    assert result.readability == 117.67
    assert result.digest == analysis.digest(SIMPLE, 3)
    page = analysis.render_report("<script>alert(1)</script> & co", result)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<td>cat</td><td>1</td>" in page


# --- real workers --------------------------------------------------------------------------

TEXT = "Queues absorb bursts. Workers drain queues steadily! Idempotent workers survive crashes."


@pytest.fixture(scope="module")
def queue_db(postgres_server: Server) -> str:
    return fresh_database(postgres_server, "refapp_queue_test")


@pytest.fixture(scope="module")
def worker(
    queue_db: str, redis_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, str]]:
    """One worker on every queue, and this process's enqueue() pointed at its broker."""
    broker_url = fresh_redis(redis_server, 11)
    w = start_worker(tmp_path_factory.mktemp("queue-worker"), queue_db, broker_url)
    with global_broker(broker_url):
        yield w, broker_url
    w.stop()


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


@pytest.mark.stack
def test_analyse_runs_once_and_chains_render(queue_db: str, worker: tuple[Worker, str]) -> None:
    w, broker_url = worker
    cache = redis.Redis.from_url(broker_url)  # the workers' REDIS_URL too, in these tests
    with connect(queue_db) as conn:
        submission_id, job_id = add_job(conn, title="<b>CV</b> & notes", content=TEXT)
        cache.set(cachekeys.submission(submission_id), "pending, as the web tier cached it")
        tasks.enqueue(job_id, submission_id, "analyse", "high")
        rendered = wait_until(
            lambda: (r := render_job(conn, submission_id)) and r["status"] == "done", 30
        )
        assert rendered, w.log_tail()
        assert job(conn, job_id) == {
            "status": "done",
            "attempts": 1,
            "completions": 1,
            "error": None,
        }
        assert render_job(conn, submission_id) == {
            "status": "done",
            "attempts": 1,
            "completions": 1,
            "error": None,
        }
        word_count, unique, top = conn.execute(
            "SELECT word_count, unique_words, top_terms FROM analyses WHERE submission_id = %s",
            (submission_id,),
        ).fetchone() or (None, None, None)
        # queues absorb bursts | workers drain queues steadily | idempotent workers survive crashes
        assert (word_count, unique) == (11, 9)
        assert top[:2] == [["queues", 2], ["workers", 2]]
        (html,) = conn.execute(
            "SELECT html FROM reports WHERE submission_id = %s", (submission_id,)
        ).fetchone() or ("",)
        assert "&lt;b&gt;CV&lt;/b&gt; &amp; notes" in html
        status = conn.execute("SELECT status FROM submissions WHERE id = %s", (submission_id,))
        assert status.fetchone() == ("rendered",)
    # The worker dropped the web tier's stale copy when it changed the row.
    assert cache.get(cachekeys.submission(submission_id)) is None
    cache.close()
    # Dramatiq's exporter saw both actors (aggregated over the worker's processes).
    metrics = w.metrics()
    assert 'dramatiq_messages_total{actor_name="analyse_submission_high"' in metrics
    assert 'actor_name="render_report"' in metrics


@pytest.mark.stack
def test_designed_failure_retries_into_dead_letters(
    queue_db: str, worker: tuple[Worker, str]
) -> None:
    w, broker_url = worker
    before = queue_stats.snapshot(broker_url)["analyse"]["dead_letters"]
    with connect(queue_db) as conn:
        submission_id, job_id = add_job(conn, title="__fail__ on purpose", content=TEXT)
        tasks.enqueue(job_id, submission_id, "analyse", "default")
        assert wait_until(lambda: job(conn, job_id)["status"] == "dead", 30), w.log_tail()
        state = job(conn, job_id)
        # JOB_MAX_RETRIES=2: the first attempt and two retries, with backoff between them.
        assert (state["attempts"], state["completions"]) == (3, 0)
        assert "DesignedFailure" in str(state["error"])
        status = conn.execute("SELECT status FROM submissions WHERE id = %s", (submission_id,))
        assert status.fetchone() == ("failed",)
        assert render_job(conn, submission_id) is None
    stats = queue_stats.snapshot(broker_url)["analyse"]
    assert stats["dead_letters"] == before + 1
    assert (stats["depth"], stats["in_flight"], stats["delayed"]) == (0, 0, 0)
    assert stats["oldest_age_seconds"] == 0
    assert "dramatiq_message_rejects_total" in w.metrics()


@pytest.mark.stack
def test_cleanup_sweeps_unenqueued_jobs_and_purges_deleted_submissions(
    queue_db: str, worker: tuple[Worker, str]
) -> None:
    w, _ = worker
    with connect(queue_db) as conn:
        # Sent by a relay ten minutes ago, but the broker lost it (a Redis restart without
        # persistence).
        submission_id, job_id = add_job(
            conn, title="lost", content=TEXT, priority="low", enqueued_seconds_ago=600
        )
        # Soft-deleted two days ago: past the default retention of one day.
        purged_id, _ = add_job(conn, title="gone", content=TEXT)
        conn.execute(
            "UPDATE submissions SET deleted_at = now() - interval '2 days' WHERE id = %s",
            (purged_id,),
        )
        done = wait_until(
            lambda: (r := render_job(conn, submission_id)) and r["status"] == "done", 30
        )
        assert done, w.log_tail()
        assert job(conn, job_id)["completions"] == 1
        gone = "SELECT count(*) FROM jobs WHERE submission_id = %s"
        assert wait_until(lambda: conn.execute(gone, (purged_id,)).fetchone() == (0,), 10)
        assert (
            conn.execute("SELECT 1 FROM submissions WHERE id = %s", (purged_id,)).fetchone() is None
        )


@pytest.mark.stack
def test_enqueue_routes_by_tier_and_snapshot_reports_depth_and_age(
    redis_server: Server,
) -> None:
    broker_url = fresh_redis(redis_server, 13)  # no worker consumes here
    empty = queue_stats.snapshot(broker_url)
    assert set(empty) == {"analyse-high", "analyse", "analyse-low", "render", "cleanup"}
    assert all(v == 0 for q in empty.values() for v in q.values())
    before = time.time()
    with global_broker(broker_url):
        for priority in ("high", "default", "low", "low"):
            tasks.enqueue(str(uuid.uuid4()), str(uuid.uuid4()), "analyse", priority)
        tasks.enqueue(str(uuid.uuid4()), str(uuid.uuid4()), "render", "high")
        with pytest.raises(ValueError):
            tasks.enqueue(str(uuid.uuid4()), str(uuid.uuid4()), "analyse", "urgent")
        with pytest.raises(ValueError):
            tasks.enqueue(str(uuid.uuid4()), str(uuid.uuid4()), "cleanup", "default")
    time.sleep(0.3)
    stats = queue_stats.snapshot(broker_url)
    since_first_enqueue = time.time() - before  # the oldest message cannot be older
    depths = {q: s["depth"] for q, s in stats.items()}
    assert depths == {"analyse-high": 1, "analyse": 1, "analyse-low": 2, "render": 1, "cleanup": 0}
    for queue in ("analyse-high", "analyse", "analyse-low", "render"):
        # The oldest waiting message was enqueued after `before` and at least 0.3 s ago
        # (Dramatiq stamps messages in whole milliseconds: allow that rounding).
        assert 0.3 <= stats[queue]["oldest_age_seconds"] <= since_first_enqueue + 0.002
        assert stats[queue]["in_flight"] == stats[queue]["dead_letters"] == 0
    assert stats["cleanup"]["oldest_age_seconds"] == 0


@pytest.mark.stack
def test_sigkilled_job_is_redelivered_and_completes_once(
    postgres_server: Server, redis_server: Server, tmp_path: Path
) -> None:
    # Own database and Redis: the module's worker must not pick this job up or sweep it.
    db = fresh_database(postgres_server, "refapp_queue_kill")
    broker_url = fresh_redis(redis_server, 12)
    # ~15M sha256 rounds: several seconds of CPU, so the kill lands mid-job.
    slow = start_worker(
        tmp_path, db, broker_url, threads=1, env={"ANALYSIS_WORK_FACTOR": "15000000"}
    )
    replacement: Worker | None = None
    try:
        with connect(db) as conn, global_broker(broker_url):
            submission_id, job_id = add_job(conn, title="killed mid-run", content=TEXT)
            tasks.enqueue(job_id, submission_id, "analyse", "default")
            assert wait_until(lambda: job(conn, job_id)["status"] == "running", 20), slow.log_tail()
            time.sleep(0.5)
            slow.kill()
            killed_at = time.monotonic()
            assert job(conn, job_id)["completions"] == 0
            assert queue_stats.snapshot(broker_url)["analyse"]["in_flight"] == 1

            replacement = start_worker(tmp_path, db, broker_url, threads=1)
            done = wait_until(lambda: job(conn, job_id)["status"] == "done", 40, interval=0.2)
            redelivery = time.monotonic() - killed_at
            assert done, replacement.log_tail()
            print(f"redelivered and completed {redelivery:.1f}s after SIGKILL")
            state = job(conn, job_id)
            assert (state["attempts"], state["completions"]) == (2, 1)
            rows = conn.execute(
                "SELECT count(*) FROM analyses WHERE submission_id = %s", (submission_id,)
            ).fetchone()
            assert rows == (1,)
            assert wait_until(
                lambda: (r := render_job(conn, submission_id)) and r["completions"] == 1, 20
            ), replacement.log_tail()
    finally:
        slow.stop()
        if replacement is not None:
            replacement.stop()


@pytest.mark.stack
def test_cleanup_before_the_schema_exists_waits_for_the_next_tick(
    postgres_server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # At stack start the worker's first cleanup tick can run before the web tier migrated
    # the schema: it must not fail (Dramatiq would log a traceback), only wait a tick.
    with psycopg.connect(postgres_server.url, autocommit=True, connect_timeout=5) as conn:
        conn.execute('DROP DATABASE IF EXISTS "refapp_no_schema" WITH (FORCE)')
    url = postgres_server.create_database("refapp_no_schema")
    from refapp import settings, worker_db

    monkeypatch.setenv("DATABASE_URL", url)
    settings.get.cache_clear()
    worker_db.close()
    try:
        with caplog.at_level("INFO", logger="refapp.tasks"):
            tasks.cleanup.fn()
    finally:
        worker_db.close()
        monkeypatch.undo()
        settings.get.cache_clear()
    assert "no schema yet" in caplog.text


def _autogroup_nice(pid: int) -> int | None:
    try:  # "/autogroup-123 nice 7"
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.mark.stack
def test_worker_nice_lowers_the_workers_and_their_sessions_priority(
    queue_db: str, worker: tuple[Worker, str], tmp_path: Path
) -> None:
    import psutil

    default, broker_url = worker
    niced = start_worker(tmp_path, queue_db, broker_url, env={"WORKER_NICE": "7"})
    try:
        main = psutil.Process(niced.proc.pid)
        # Dramatiq's children: the worker process, and the metrics exporter (not a worker).
        children = main.children()
        exporter = [
            p for p in children
            if any(c.laddr.port == niced.metrics_port for c in p.net_connections("tcp"))
        ]  # fmt: skip
        booted = [p for p in children if p not in exporter]
        assert len(exporter) == 1 and booted and all(p.nice() == 7 for p in booted)
        # The whole session (main process, exporter, workers) is one autogroup: niced, so
        # the CPU split between sessions favours the web tier. Without WORKER_NICE: not.
        if _autogroup_nice(main.pid) is not None:
            assert _autogroup_nice(main.pid) == 7
            assert _autogroup_nice(default.proc.pid) == 0
    finally:
        niced.stop()


def test_session_priority_is_left_alone_outside_the_queue_sides_own_session() -> None:
    # pytest runs in some other session (a shell's, CI's), led by a process that is not
    # Dramatiq: never nice that one, even when that leader is pytest's parent.
    from refapp import priority

    if os.getsid(0) == os.getpid():
        pytest.skip("this test process leads its own session")
    before = _autogroup_nice(os.getpid())
    assert priority.lower_session_priority(5) is False
    assert _autogroup_nice(os.getpid()) == before
