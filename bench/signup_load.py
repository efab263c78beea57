"""Benchmark: signups and confirmations under load, gunicorn on PostgreSQL (issue 3).

Creates a fresh PostgreSQL database (dropped first), migrates it, starts gunicorn on
127.0.0.1:<free port> serving the project (DEBUG off, 4 sync workers by default, rate limits
raised, Redis cache as in production, email to Django's dummy backend, Celery eager because no
broker is set), then runs CLIENTS concurrent clients for DURATION seconds. Each client loops:

    GET  /subscribe/                       the form, the CSRF cookie and token
    POST /subscribe/                       a signup: mostly new addresses; ~10% repeat an
                                           address signed up moments ago, half of those in
                                           other letter case (the uniqueness rule, raced)
    GET  /subscribe/check-inbox/           where the POST redirects
    GET  /subscribe/confirm/<token>/       for ~30% of new signups: the confirm page ...
    POST /subscribe/confirm/<token>/       ... and its button

The confirm token is made in this process with subscribers.tokens.token_make (same SECRET_KEY
and database as the server). A confirm link may be refused (400) when another signup of the same
address renewed it meanwhile; that is counted apart and expected. Afterwards PostgreSQL is
checked: no two rows with the same lower(email), every address stored normalised, every
accepted signup has its row, every confirmed address is active.

    .venv/bin/python bench/signup_load.py [--clients 50] [--duration 20] [--workers 4]
        [--worker-class sync|gthread] [--threads 4] [--cache redis|locmem]

Targets: no 5xx, no duplicate rows. Exit status 1 when a target or a check fails, or on any
unexpected 4xx or client error. The last line of output is JSON with the figures. Only 127.0.0.1
is contacted; gunicorn is stopped at the end, also on errors and Ctrl-C. Results and the choice
of worker class: docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import Service, service_start  # noqa: E402

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"
SECRET_KEY = "bench-signup-load-secret-key-not-for-production-0123456789abcdef"  # noqa: S105
HOST = "127.0.0.1"


# --- the form on a page ---------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # hidden and checked inputs
    email_name: str | None = None
    checkboxes: list[tuple[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """The forms of a page: hidden inputs, the email input, checkboxes (checked or not)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._form)
            return
        if self._form is None or tag not in {"input", "button"}:
            return
        name, kind, value = a.get("name", ""), a.get("type", "text").lower(), a.get("value", "")
        if not name:
            return
        if tag == "button":
            if kind == "submit":
                self._form.fields.append((name, value))
        elif kind == "hidden":
            self._form.fields.append((name, value))
        elif kind == "email" or (kind == "text" and name == "email"):
            self._form.email_name = name
        elif kind == "checkbox":
            self._form.checkboxes.append((name, value or "on"))
            if "checked" in a:
                self._form.fields.append((name, value or "on"))
        elif kind == "submit":
            self._form.fields.append((name, value))
        # Other text inputs (a honeypot) are left empty, as a person leaves them.

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def post_form(html: str) -> Form:
    parser = FormParser()
    parser.feed(html)
    forms = [form for form in parser.forms if form.method == "post"]
    if not forms:
        raise ValueError("no POST form on the page")
    return forms[0]


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{kind}: {message}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def database_recreate(name: str) -> str:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def server_env(args: argparse.Namespace, database_url: str, var: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_", "ANYMAIL_", "DATABASE_", "REDIS_", "EMAIL_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "newsletter.settings",
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": HOST,
            "SITE_URL": f"http://{HOST}:{args.port}",
            # Plain HTTP on loopback: cookies must not be Secure-only, or no client sends them.
            "CSRF_COOKIE_SECURE": "false",
            "SESSION_COOKIE_SECURE": "false",
            "DATABASE_URL": database_url,
            # No broker: Celery runs tasks eagerly, in the request (the embedded default).
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "EMAIL_FILE_PATH": str(var / "emails"),
            "MEDIA_ROOT": str(var / "media"),
            "STATIC_ROOT": str(var / "static"),
            # One IP, thousands of signups: the limits must not be what is measured.
            "SIGNUP_RATE_LIMIT_PER_IP": "100000000",
            "SIGNUP_RATE_LIMIT_PER_EMAIL": "100000000",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.cache == "redis":
        env["REDIS_CACHE_URL"] = args.redis_url
    return env


def server_start(args: argparse.Namespace, env: dict[str, str], log_path: Path) -> Service:
    command = [
        sys.executable,
        *("-m", "gunicorn", "newsletter.wsgi:application"),
        *("--bind", f"{HOST}:{args.port}", "--workers", str(args.workers)),
        *("--worker-class", args.worker_class, "--threads", str(args.threads)),
        *("--timeout", "60", "--graceful-timeout", "10", "--backlog", "2048"),
        *("--log-level", "warning", "--error-logfile", "-"),
    ]
    server = service_start(log_path.stem, command, env=env, log_dir=log_path.parent)
    process = server.process
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start:\n{server.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://{HOST}:{args.port}/healthz", timeout=2).status_code < 500:
                return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer in 60 s:\n{server.log_tail()}")


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in one process group (from /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        # After the command: state, ppid, pgrp, ..., utime is field 14 and stime 15 of stat(5).
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# --- the clients ----------------------------------------------------------------------------


class Addresses:
    """New addresses, and repeats of addresses signed up moments ago (maybe still in flight)."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.count = 0
        self.recent: list[str] = []
        self.posted: set[str] = set()  # lower-case addresses whose signup got a 2xx/3xx
        self.in_flight: Counter[str] = Counter()  # lower-case addresses being POSTed now
        self.concurrent = 0  # POSTs sent while another POST of the same address was unanswered
        self.repeats = 0
        self.begun: Counter[str] = Counter()  # signup POSTs sent, per lower-case address
        self.completed: Counter[str] = Counter()  # ... and answered
        self.superseded = 0  # confirm links refused because a later signup renewed the nonce

    def post_begin(self, address: str, repeat: bool) -> None:
        with self.lock:
            key = address.lower()
            if self.in_flight[key]:
                self.concurrent += 1
            self.in_flight[key] += 1
            self.begun[key] += 1
            self.repeats += repeat

    def post_end(self, address: str) -> None:
        with self.lock:
            self.in_flight[address.lower()] -= 1
            self.completed[address.lower()] += 1

    def completed_count(self, address: str) -> int:
        with self.lock:
            return self.completed[address.lower()]

    def refused_link(self, address: str, signups_then: int) -> bool:
        """A 400 for a confirm link is right when another signup of the address, one not yet
        answered when the link's own signup was, may have renewed the nonce since. (The server
        commits before the client sees the answer, so "answered later" is not enough.)"""
        with self.lock:
            if self.begun[address.lower()] > signups_then:
                self.superseded += 1
                return True
            return False

    def next(self, rng: random.Random, repeat_share: float) -> tuple[str, bool]:
        with self.lock:
            if self.recent and rng.random() < repeat_share:
                address = rng.choice(self.recent[-50:])
                if rng.random() < 0.5:  # the same address in other letter case
                    local, _, domain = address.partition("@")
                    address = f"{local.capitalize()}@{domain.upper()}"
                return address, True
            self.count += 1
            address = f"reader{self.count}.{self.run}@example.org"
            self.recent.append(address)
            del self.recent[:-200]
            return address, False

    def accepted(self, address: str) -> None:
        with self.lock:
            self.posted.add(address.lower())


def token_minter() -> Any:
    """A function email -> confirm token, made with the project's own token_make."""
    from subscribers.models import Subscriber
    from subscribers.tokens import Purpose, token_make

    def mint(address: str) -> str | None:
        subscriber = Subscriber.objects.filter(email__iexact=address).first()
        if subscriber is None:
            return None
        return token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)

    return mint


def client_loop(
    number: int,
    *,
    base: str,
    stop_at: float,
    addresses: Addresses,
    stats: Stats,
    minting: ThreadPoolExecutor,
    mint: Any,
    confirm_share: float,
    repeat_share: float,
    confirmed: set[str],
    confirmed_lock: threading.Lock,
) -> None:
    rng = random.Random(number)
    session = requests.Session()
    session.headers["User-Agent"] = f"bench-signup-load/{number}"
    subscribe_url = f"{base}/subscribe/"

    def call(kind: str, method: str, url: str, **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = session.request(method, url, timeout=30, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            stats.error(kind, f"{type(exc).__name__}: {exc}")
            return None
        stats.record(kind, time.perf_counter() - started, response.status_code)
        if response.status_code >= 500:
            stats.error(kind, f"{response.status_code} {url}")
        return response

    def one_round() -> None:
        page = call("get_subscribe", "GET", subscribe_url)
        if page is None or page.status_code != 200:
            return
        try:
            form = post_form(page.text)
        except ValueError as exc:
            stats.error("get_subscribe", str(exc))
            return
        address, repeat = addresses.next(rng, repeat_share)
        data = [*form.fields, (form.email_name or "email", address)]
        addresses.post_begin(address, repeat)
        try:
            answer = call(
                "post_signup",
                "POST",
                urljoin(subscribe_url, form.action or subscribe_url),
                data=data,
                headers={"Referer": subscribe_url},
            )
        finally:
            addresses.post_end(address)
        if answer is None:
            return
        if answer.status_code >= 400:
            if answer.status_code < 500:  # limits are raised, the input is valid: unexpected
                stats.error("post_signup", f"{answer.status_code} for {address}")
            return
        signups_then = addresses.completed_count(address)
        addresses.accepted(address)
        if answer.is_redirect:
            call("get_check_inbox", "GET", urljoin(subscribe_url, answer.headers["location"]))
        if repeat or rng.random() >= confirm_share:
            return
        token = minting.submit(mint, address).result()
        if token is None:
            stats.error("mint", f"no row for {address}")
            return
        confirm_url = f"{base}/subscribe/confirm/{token}/"
        shown = call("get_confirm", "GET", confirm_url)
        if shown is None or shown.status_code != 200:
            refused(shown, "get_confirm", address, signups_then)
            return
        try:
            button = post_form(shown.text)
        except ValueError as exc:
            stats.error("get_confirm", str(exc))
            return
        done = call(
            "post_confirm",
            "POST",
            urljoin(confirm_url, button.action or confirm_url),
            data=button.fields,
            headers={"Referer": confirm_url},
        )
        if done is not None and done.status_code < 400:
            with confirmed_lock:
                confirmed.add(address.lower())
        else:
            refused(done, "post_confirm", address, signups_then)

    def refused(
        response: requests.Response | None, kind: str, address: str, signups_then: int
    ) -> None:
        if response is None or response.status_code >= 500:
            return  # already counted
        if response.status_code == 400 and addresses.refused_link(address, signups_then):
            return
        stats.error(kind, f"{response.status_code} for {address}, no later signup of it")

    while time.monotonic() < stop_at:
        try:
            one_round()
        except Exception as exc:  # a bug in the bench or a broken page: count it, go on
            stats.error("client", f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)


# --- the check afterwards -------------------------------------------------------------------


def database_check(database_url: str, confirmed: set[str]) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        duplicates = conn.execute(
            "SELECT lower(email), count(*) FROM subscribers_subscriber"
            " GROUP BY lower(email) HAVING count(*) > 1"
        ).fetchall()
        by_status = dict(
            conn.execute(
                "SELECT status, count(*) FROM subscribers_subscriber GROUP BY status"
            ).fetchall()
        )
        not_normalised = conn.execute(
            "SELECT count(*) FROM subscribers_subscriber WHERE email <> lower(trim(email))"
        ).fetchone()
        rows = conn.execute("SELECT lower(email), status FROM subscribers_subscriber").fetchall()
    status_of = dict(rows)
    return {
        "rows": len(rows),
        "duplicate_emails": len(duplicates),
        "duplicate_samples": [email for email, _ in duplicates[:5]],
        "by_status": by_status,
        "not_normalised": int(not_normalised[0]) if not_normalised else 0,
        "confirmed_not_active": sum(1 for email in confirmed if status_of.get(email) != "active"),
        "addresses": status_of,
    }


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="per worker (gthread)")
    parser.add_argument("--cache", default="redis", choices=["redis", "locmem"])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--database", default="bench_signup")
    parser.add_argument("--confirm-share", type=float, default=0.3)
    parser.add_argument("--repeat-share", type=float, default=0.1)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    args.port = free_port()
    if args.worker_class == "sync":
        args.threads = 1

    print(
        f"signup load: {args.clients} clients for {args.duration:.0f} s against gunicorn "
        f"({args.workers} workers, {args.worker_class}, {args.threads} threads each), "
        f"PostgreSQL database {args.database}, cache {args.cache}",
        flush=True,
    )
    database_url = database_recreate(args.database)
    var = Path(tempfile.mkdtemp(prefix="bench-signup-"))
    env = server_env(args, database_url, var)
    if args.cache == "redis":
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()  # no rate-limit counters from a last run

    # This process mints confirm tokens: same settings, same database, same SECRET_KEY.
    os.environ.update({k: v for k, v in env.items() if k not in {"PYTHONUNBUFFERED"}})
    for key in [k for k in os.environ if k.startswith("CELERY_")]:
        del os.environ[key]
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    print(f"  [{time.monotonic() - started:5.2f} s] migrated", flush=True)

    import django

    django.setup()
    mint = token_minter()

    server = server_start(args, env, var / "gunicorn.log")
    base = f"http://{HOST}:{args.port}"
    print(f"  [{time.monotonic() - started:5.2f} s] gunicorn answers at {base}", flush=True)
    stats = Stats()
    addresses = Addresses(run=f"{int(time.time())}")
    confirmed: set[str] = set()
    confirmed_lock = threading.Lock()
    try:
        # Two threads mint tokens, so the bench holds two database connections, not fifty.
        with ThreadPoolExecutor(max_workers=2) as minting:
            # CPU seconds during the load: this process (the clients and the token minting) and
            # gunicorn's process group (master and workers). They share the machine's cores.
            client_cpu = -process_cpu_seconds()
            machine_before = machine_cpu_ticks()
            server_cpu = -group_cpu_seconds(server.process.pid)
            load_started = time.monotonic()
            stop_at = load_started + args.duration
            threads = [
                threading.Thread(
                    target=client_loop,
                    args=(number,),
                    kwargs={
                        "base": base,
                        "stop_at": stop_at,
                        "addresses": addresses,
                        "stats": stats,
                        "minting": minting,
                        "mint": mint,
                        "confirm_share": args.confirm_share,
                        "repeat_share": args.repeat_share,
                        "confirmed": confirmed,
                        "confirmed_lock": confirmed_lock,
                    },
                    daemon=True,
                )
                for number in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=args.duration + 60)
            elapsed = time.monotonic() - load_started
            client_cpu += process_cpu_seconds()
            busy_after, total_after = machine_cpu_ticks()
            busy, total_ticks = busy_after - machine_before[0], total_after - machine_before[1]
            machine_busy = busy / total_ticks if total_ticks else 0.0
            server_cpu += group_cpu_seconds(server.process.pid)
        print(f"  [{time.monotonic() - started:5.2f} s] load done ({elapsed:.1f} s)", flush=True)
    finally:
        server.stop()
    server_log = server.log_tail()
    check = database_check(database_url, confirmed)
    status_of = check.pop("addresses")
    missing = sum(1 for email in addresses.posted if email not in status_of)

    kinds = ["get_subscribe", "post_signup", "get_check_inbox", "get_confirm", "post_confirm"]
    total = sum(len(values) for values in stats.latencies.values())
    server_errors = sum(
        count
        for counter in stats.statuses.values()
        for code, count in counter.items()
        if code >= 500
    )
    client_errors = sum(
        count
        for counter in stats.statuses.values()
        for code, count in counter.items()
        if 400 <= code < 500
    )
    figures: dict[str, Any] = {
        "clients": args.clients,
        "duration_s": round(elapsed, 2),
        "server": f"gunicorn {args.workers} x {args.worker_class}"
        + (f" ({args.threads} threads)" if args.worker_class == "gthread" else ""),
        "cache": args.cache,
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "signups_per_s": round(len(stats.latencies["post_signup"]) / elapsed, 1),
        "status_5xx": server_errors,
        "status_4xx": client_errors,
        # Connection errors, pages without their form, exceptions in a client loop.
        "other_errors": sum(stats.errors.values()) - server_errors,
        "cpu_s_clients": round(client_cpu, 1),
        "cpu_s_server": round(server_cpu, 1),
        "cpu_cores": os.cpu_count(),
        "machine_busy": round(machine_busy, 2),
        "kinds": {},
        "db_rows": check["rows"],
        "db_duplicate_emails": check["duplicate_emails"],
        "db_not_normalised": check["not_normalised"],
        "db_by_status": check["by_status"],
        "signup_repeats": addresses.repeats,
        "signup_repeats_concurrent": addresses.concurrent,
        "confirm_links_superseded": addresses.superseded,
        "accepted_signups_distinct": len(addresses.posted),
        "accepted_signups_without_row": missing,
        "confirmed": len(confirmed),
        "confirmed_not_active": check["confirmed_not_active"],
    }
    print()
    print(f"{'kind':16} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses")
    for kind in kinds:
        values = stats.latencies.get(kind, [])
        row = {
            "count": len(values),
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p95_ms": round(percentile(values, 95) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
            "statuses": {str(code): n for code, n in sorted(stats.statuses[kind].items())},
        }
        figures["kinds"][kind] = row
        print(
            f"{kind:16} {row['count']:7d} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} "
            f"{row['p99_ms']:8.1f}  {row['statuses']}"
        )
    everything = [v for values in stats.latencies.values() for v in values]
    figures["all_p50_ms"] = round(percentile(everything, 50) * 1000, 1)
    figures["all_p95_ms"] = round(percentile(everything, 95) * 1000, 1)
    figures["all_p99_ms"] = round(percentile(everything, 99) * 1000, 1)
    print(
        f"{'all':16} {total:7d} {figures['all_p50_ms']:8.1f} {figures['all_p95_ms']:8.1f} "
        f"{figures['all_p99_ms']:8.1f}"
    )
    print()
    print(
        f"requests: {total} in {elapsed:.1f} s = {figures['requests_per_s']} req/s; "
        f"signups {figures['signups_per_s']}/s; 5xx {server_errors}; 4xx {client_errors}; "
        f"other errors {figures['other_errors']}"
    )
    print(
        f"signups: {len(addresses.posted)} distinct addresses, {addresses.repeats} repeats "
        f"(half in other letter case), {addresses.concurrent} sent while the same address "
        f"was still in flight; {addresses.superseded} confirm links refused (400) because a "
        "later signup of the address renewed its link"
    )
    print(
        f"CPU during the load: clients {client_cpu:.1f} s, gunicorn {server_cpu:.1f} s, "
        f"machine busy {machine_busy:.0%} of {os.cpu_count()} cores"
    )
    print(
        f"PostgreSQL: {check['rows']} subscribers {check['by_status']}; duplicate lower(email): "
        f"{check['duplicate_emails']}; not normalised: {check['not_normalised']}; accepted "
        f"signups without a row: {missing}; confirmed {len(confirmed)}, of them not active: "
        f"{check['confirmed_not_active']}"
    )
    if stats.error_samples:
        print("errors (first 10):\n  " + "\n  ".join(stats.error_samples))
    if server_errors or stats.errors:
        print(f"gunicorn log (tail):\n{server_log}")
    ok = (
        server_errors == 0
        and figures["other_errors"] == 0
        and check["duplicate_emails"] == 0
        and missing == 0
        and check["confirmed_not_active"] == 0
        and total > 0
    )
    figures["ok"] = ok
    if not args.keep_database:
        import psycopg

        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    print(json.dumps(figures, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
