"""Measuring probes for bench/send.py, loaded into the processes the bench starts.

    python -m bench._send_support celery -A newsletter worker ...   # a Celery worker
    python -m bench._send_support manage send_digest ...            # a management command

Before handing over to Celery's (or Django's) own command line, this installs:

- a query counter on every Django database connection the process opens
  (`connection.execute_wrappers`, the documented hook): each `execute`/`executemany` call of
  the ORM or of a Django cursor counts once, with its time. SQL sent by other paths (a raw
  psycopg cursor, COPY) is not seen; the bench prints the PostgreSQL-side transaction count
  beside it as a cross-check.
- Celery signal handlers that, after each task (and at the end of a command), add the process's
  new counts to Redis (`BENCH_STATS_URL`): per process queries, SQL seconds, peak RSS (VmHWM),
  and per task name the number of runs, seconds and SQL queries.

The engine's code is not touched: this only observes it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any

_lock = threading.Lock()
_state = {"queries": 0, "sql_s": 0.0, "flushed_queries": 0, "flushed_sql_s": 0.0}
_task_started: dict[str, float] = {}
_task_queries: dict[str, float] = {}  # the process's query count as each task started
_redis: Any = None


def _vm_hwm_kb() -> int:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _counter(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - started
        with _lock:
            _state["queries"] += 1
            _state["sql_s"] += elapsed


def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _counter not in connection.execute_wrappers:
        connection.execute_wrappers.append(_counter)


def _client() -> Any:
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(os.environ["BENCH_STATS_URL"])
    return _redis


def flush(role: str) -> None:
    """Adds what this process counted since the last flush to the Redis totals."""
    if not os.environ.get("BENCH_STATS_URL"):
        return
    with _lock:
        queries = _state["queries"] - _state["flushed_queries"]
        sql_s = _state["sql_s"] - _state["flushed_sql_s"]
        _state["flushed_queries"] = _state["queries"]
        _state["flushed_sql_s"] = _state["sql_s"]
    key = f"bench:proc:{os.getpid()}"
    pipe = _client().pipeline()
    pipe.hset(key, "role", role)
    pipe.hincrby(key, "queries", int(queries))
    pipe.hincrbyfloat(key, "sql_s", sql_s)
    pipe.hset(key, "hwm_kb", _vm_hwm_kb())
    pipe.sadd("bench:procs", key)
    pipe.execute()


def _install_django() -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection, weak=False)


def _install_celery() -> None:
    from celery import signals

    def prerun(task_id: str | None = None, **kwargs: Any) -> None:
        if task_id:
            _task_started[task_id] = time.perf_counter()
            _task_queries[task_id] = _state["queries"]

    def postrun(
        task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
    ) -> None:
        started = _task_started.pop(task_id or "", None)
        queries_before = _task_queries.pop(task_id or "", _state["queries"])
        flush("worker")
        if task is not None and started is not None:
            name = getattr(task, "name", str(task))
            pipe = _client().pipeline()
            pipe.hincrby("bench:task_runs", f"{name}:{state}", 1)
            pipe.hincrbyfloat("bench:task_seconds", name, time.perf_counter() - started)
            pipe.hincrby("bench:task_queries", name, int(_state["queries"] - queries_before))
            pipe.execute()

    signals.task_prerun.connect(prerun, weak=False)
    signals.task_postrun.connect(postrun, weak=False)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"celery", "manage"}:
        raise SystemExit("usage: python -m bench._send_support celery|manage ARGS...")
    kind, rest = sys.argv[1], sys.argv[2:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")
    _install_django()
    if kind == "celery":
        _install_celery()
        from celery.__main__ import main as celery_main

        sys.argv = ["celery", *rest]
        celery_main()
    else:
        atexit.register(flush, "command")
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *rest])


if __name__ == "__main__":
    main()
