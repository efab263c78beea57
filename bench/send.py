"""Benchmark: one digest to 100,000 readers via Celery, anymail's Mailgun backend and a fake ESP.

Creates a fresh PostgreSQL database (`bench_send`, dropped first), migrates it, inserts READERS
active subscribers with random choices among the six default categories (seeded; each reader
1 to 6 categories; COPY into the subscriber and the many-to-many tables) and one approved digest
of six sections (Korean Markdown summaries of about 2,000 characters, five papers each, the chart
from `digests.chart.chart_render`) due now. Then it starts, each as its own process group:

- the fake Mailgun API (`python -m tests.fakes.esp_server --port N`), counting calls and
  recipients;
- WORKERS Celery workers (`--pool`, `--concurrency` each) on Redis db 12 (flushed first; the
  Django cache on Redis db 10, as in docker-compose.yml), with
  the Mailgun backend pointed at the fake (`ANYMAIL_MAILGUN_API_URL=http://127.0.0.1:N/v3`),
  `DEBUG=false`. They run through `bench/_send_support.py`, which counts every SQL query their
  Django connections execute and records their peak memory in Redis (db 11).

The send is started through the engine (`--start task`: `digest_send_start.delay(...)`, the task
the beat schedule and `send_digest` use; `--start command`: `manage.py send_digest --no-wait` in a
counted subprocess), and the digest's status is polled every 0.2 s until it is `sent`. Wall time
runs from the start call to the first poll that sees `sent`.

For comparison, the naive way runs in this process on NAIVE readers: for each reader the
Django-rendered MJML template is compiled with `mjml.mjml2html` and sent in its own API call
through the same Mailgun backend to the same fake ESP.

    .venv/bin/python bench/send.py [--readers 100000] [--workers 2] [--concurrency 1]
        [--pool prefork|solo|threads] [--naive 2000] [--start task|command] [--timeout 900]

Targets (issue 4), 2-core machine: 100,000 emails in under 30 s, at most 200 ESP calls, at most
10 SQL queries per 1,000 recipients, under 300 MB peak memory per process. Exit status 1 when a
target or a check (every reader exactly once, no duplicates) fails. The last line of output is
JSON with the figures. Only 127.0.0.1 is contacted; processes and the database are removed at
the end, also on errors, Ctrl-C and the overall timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import processes  # noqa: E402
from tests.processes import Service as BaseService  # noqa: E402

HOST = "127.0.0.1"
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"
DB_NAME = "bench_send"
BROKER_URL = "redis://127.0.0.1:6379/12"
STATS_URL = "redis://127.0.0.1:6379/11"
CACHE_URL = "redis://127.0.0.1:6379/10"  # Django's cache, Redis as in docker-compose.yml
SECRET_KEY = "bench-send-secret-key-not-for-production-0123456789abcdef"  # noqa: S105
SITE_URL = "https://insights.example.org"
API_KEY = "bench-mailgun-key"
SENDER_DOMAIN = "mg.insights.example.org"

TARGET_WALL_S = 30.0
TARGET_ESP_CALLS = 200
TARGET_SQL_PER_1000 = 10.0
TARGET_PEAK_MB = 300.0


class BenchTimeout(Exception):
    pass


def say(line: str = "") -> None:
    print(line, flush=True)


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class MeasuredService(BaseService):
    """A process of the bench whose peak memory is sampled."""

    hwm_kb: dict[int, int] = field(default_factory=dict)  # pid -> VmHWM, sampled
    roles: dict[int, str] = field(default_factory=dict)

    def sample_memory(self) -> None:
        """Reads VmHWM (peak resident set) of every live process of this service's group."""
        for pid in group_pids(self.process.pid):
            hwm = vm_hwm_kb(pid)
            if hwm:
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
                self.roles.setdefault(pid, "parent" if pid == self.process.pid else "child")


Service = MeasuredService


def service_start(name: str, args: list[str], *, env: dict[str, str], log_dir: Path) -> Service:
    return processes.service_start(name, args, env=env, log_dir=log_dir, kind=MeasuredService)


def group_pids(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_cpu_seconds(pgid: int) -> float:
    ticks = 0
    for pid in group_pids(pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- environment and database ---------------------------------------------------------------


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_recreate(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_xacts(name: str) -> int:
    """Committed + rolled back transactions of the database, PostgreSQL's own count."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()
    return int(row[0]) if row else 0


def app_env(esp_port: int, var: Path, args: argparse.Namespace) -> dict[str, str]:
    """The environment of every process of the bench, this one included."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_", "ANYMAIL_", "DATABASE_", "REDIS_", "EMAIL_", "OPENAI_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "newsletter.settings",
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "SITE_URL": SITE_URL,
            "ALLOWED_HOSTS": "insights.example.org",
            "DATABASE_URL": database_url(DB_NAME),
            "CELERY_BROKER_URL": BROKER_URL,
            "REDIS_CACHE_URL": CACHE_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
            "DEFAULT_FROM_EMAIL": f"Daily AI Insights <digest@{SENDER_DOMAIN}>",
            "ANYMAIL_MAILGUN_API_KEY": API_KEY,
            "ANYMAIL_MAILGUN_SENDER_DOMAIN": SENDER_DOMAIN,
            "ANYMAIL_MAILGUN_API_URL": f"http://{HOST}:{esp_port}/v3",
            "EMAIL_FILE_PATH": str(var / "emails"),
            "MEDIA_ROOT": str(var / "media"),
            "STATIC_ROOT": str(var / "static"),
            "LOG_LEVEL": "WARNING",
            "BENCH_STATS_URL": STATS_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    for pair in args.env:
        key, _, value = pair.partition("=")
        env[key] = value
    return env


# --- the data -------------------------------------------------------------------------------

KO_OPENINGS = [
    "오늘 {name} 분야에서는 {count}편의 주목할 만한 논문이 발표되었습니다.",
    "이번 호의 {name} 연구들은 성능과 효율을 동시에 끌어올리려는 시도가 두드러집니다.",
]
KO_SENTENCES = [
    "제안된 방법은 기존 기준선 대비 평균 {p}% 향상된 결과를 여러 공개 벤치마크에서 보고합니다",
    "저자들은 계산 비용을 줄이면서도 정확도를 유지하는 경량화 기법을 체계적으로 비교했습니다",
    "특히 데이터가 부족한 환경에서의 일반화 성능을 분석한 점이 눈에 띕니다",
    "실험은 {b}개의 데이터셋에서 수행되었으며, 코드와 학습된 가중치가 함께 공개되었습니다",
    "이 연구는 평가 지표의 한계를 지적하고 사람의 판단과 더 잘 맞는 새로운 지표를 제안합니다",
    "대규모 사전학습 모델을 작은 모델로 증류하는 과정에서 발생하는 정보 손실을 정량화했습니다",
    "분산 환경에서의 학습 안정성을 높이기 위해 적응형 학습률 조정 방식을 도입했습니다",
    "실제 서비스 환경을 가정한 지연 시간 측정에서도 의미 있는 개선이 확인되었습니다",
    "다만 제안 기법이 특정 도메인에 과적합될 가능성에 대해서는 추가 검증이 필요해 보입니다",
    "여러 연구가 공통적으로 안전성과 신뢰성을 핵심 과제로 꼽고 있다는 점이 흥미롭습니다",
]
KO_TRENDS = [
    "효율적인 추론과 메모리 사용량 절감이 여러 논문의 공통 관심사입니다",
    "벤치마크 오염 문제를 피하기 위한 새로운 평가 데이터셋 구축이 활발합니다",
    "오픈소스 공개 비율이 높아져 재현 가능성이 크게 개선되고 있습니다",
]


def korean_summary(name: str, rng: random.Random, target: int = 2000) -> str:
    """A Markdown report in the shape of the LLM's: about `target` characters of Korean."""
    parts = [f"**요약 보고서**\n\n{rng.choice(KO_OPENINGS).format(name=name, count=5)}"]
    parts.append("**주제별 요약**")
    number = 0
    while sum(len(p) for p in parts) < target * 0.8:
        number += 1
        cite = f"[{(number - 1) % 5 + 1}]"
        sentences = rng.sample(KO_SENTENCES, 3)
        body = ". ".join(s.format(p=rng.randint(2, 30), b=rng.randint(3, 12)) for s in sentences)
        parts.append(f"{number}. **주제 {number}: {name}의 새로운 접근**\n\n{body} {cite}.")
    trends = "\n".join(f"* {t} [{i + 1}]." for i, t in enumerate(KO_TRENDS))
    parts.append(f"**추세와 패턴**\n\n{trends}")
    parts.append(f"**결론**\n\n이러한 연구는 {name} 분야의 실제 적용을 앞당길 것으로 보입니다.")
    return "\n\n".join(parts)


def readers_insert(count: int, category_ids: list[int], seed: int) -> tuple[int, int]:
    """COPYs `count` active subscribers and their category choices; returns (rows, links)."""
    from django.db import connection
    from django.utils import timezone

    rng = random.Random(seed)
    now = timezone.now()
    subscribers = io.StringIO()
    links = io.StringIO()
    link_id = 0
    for number in range(1, count + 1):
        email = f"reader{number:06d}@readers.example.net"
        nonce = f"{rng.getrandbits(64):016x}"
        subscribers.write(
            f"{number}\t{email}\tactive\tko\t{now.isoformat()}\tbench\t2026-11-v1\t\t"
            f"{nonce}\t{now.isoformat()}\t0\t\t{now.isoformat()}\t{now.isoformat()}\n"
        )
        for category in rng.sample(category_ids, rng.randint(1, len(category_ids))):
            link_id += 1
            links.write(f"{link_id}\t{number}\t{category}\n")
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        # The rows are consistent by construction: skip the per-row foreign key triggers (the
        # bench connects as the superuser postgres), which are most of the COPY's time.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
        columns = (
            "id, email, status, language, consent_at, consent_source, consent_wording_version, "
            "consent_note, confirm_nonce, confirmed_at, soft_bounce_count, suppressed_reason, "
            "created_at, updated_at"
        )
        with raw.copy(f"COPY subscribers_subscriber ({columns}) FROM STDIN") as copy:
            copy.write(subscribers.getvalue())
        with raw.copy(
            "COPY subscribers_subscriber_categories (id, subscriber_id, category_id) FROM STDIN"
        ) as copy:
            copy.write(links.getvalue())
        for table in ("subscribers_subscriber", "subscribers_subscriber_categories"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("SET synchronous_commit = DEFAULT")
        cursor.execute("ANALYZE subscribers_subscriber")
        cursor.execute("ANALYZE subscribers_subscriber_categories")
    return count, link_id


def digest_create(seed: int) -> Any:
    from django.utils import timezone

    from digests.chart import ChartBar, chart_render
    from digests.models import Category, Digest, DigestSection, Paper, SectionPaper

    rng = random.Random(seed + 1)
    now = timezone.now()
    day = now.date()
    categories = list(Category.objects.filter(active=True).order_by("position"))
    counts = [rng.randint(8, 60) for _ in categories]
    chart = chart_render(
        bars=[ChartBar(c.name, n, c.colour) for c, n in zip(categories, counts, strict=True)],
        title=f"{day.isoformat()} 분야별 논문 수",
        subtitle="논문 수",
    )
    digest = Digest.objects.create(
        date=day,
        status=Digest.Status.APPROVED,
        title="Daily Artificial Intelligence Insights : Papers",
        introduction="오늘의 인공지능 연구 소식을 분야별로 정리했습니다.",
        chart_png=chart,
        paper_count=sum(counts),
        built_at=now,
        send_at=now - timedelta(seconds=1),
        approved_at=now,
        approved_by="bench",
    )
    for position, (category, count) in enumerate(zip(categories, counts, strict=True)):
        section = DigestSection.objects.create(
            digest=digest,
            category=category,
            position=position,
            summary=korean_summary(category.name, rng),
            summary_source="llm",
            paper_count=count,
        )
        for number in range(5):
            arxiv_id = f"{day:%y%m}.{10000 + position * 100 + number:05d}"
            paper = Paper.objects.create(
                arxiv_id=arxiv_id,
                title=f"{category.name}: A Study of Scalable Methods, Part {number + 1}",
                abstract="We study scalable methods and report results on many benchmarks.",
                authors=[f"Author {rng.randint(1, 999)}", f"Coauthor {rng.randint(1, 999)}"],
                categories=["cs.AI"],
                primary_category="cs.AI",
                abs_url=f"https://arxiv.org/abs/{arxiv_id}",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                announce_type="new",
                announced_on=day,
                category=category,
                importance=10 - number,
                classified_by="llm",
                digest=digest,
            )
            SectionPaper.objects.create(section=section, paper=paper, position=number)
    return digest


# --- the engine's interfaces (rendering, sending, the fake ESP) ------------------------------


def esp_start(port: int, env: dict[str, str], log_dir: Path) -> Service:
    esp = service_start(
        "fake-esp",
        [sys.executable, "-m", "tests.fakes.esp_server", "--port", str(port)],
        env=env,
        log_dir=log_dir,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if esp.process.poll() is not None:
            raise RuntimeError(f"the fake ESP exited at start:\n{esp.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return esp
        time.sleep(0.1)
    esp.stop()
    raise RuntimeError(f"the fake ESP did not listen on {port} in 30 s:\n{esp.log_tail()}")


def esp_counters(port: int) -> dict[str, Any]:
    """The fake ESP's counters (`GET /_stats`): calls (any answer), accepted calls, recipients
    of accepted calls, and how many of those repeat an address seen before."""
    import requests

    return dict(requests.get(f"http://{HOST}:{port}/_stats", timeout=30).json())


def send_start(
    args: argparse.Namespace, digest_id: int, env: dict[str, str], log_dir: Path
) -> Service | None:
    """Starts the send through the engine. `task`: the start task on the broker, run by a
    worker (counted there); `command`: `manage.py send_digest --no-wait` as a counted process."""
    if args.start == "task":
        from subscribers.tasks import digest_send_start

        digest_send_start.delay(digest_id)
        return None
    from digests.models import Digest

    day = Digest.objects.filter(pk=digest_id).values_list("date", flat=True).get()
    return service_start(
        "send-digest-command",
        [
            sys.executable,
            *("-m", "bench._send_support", "manage", "send_digest"),
            *("--date", day.isoformat(), "--no-wait", "--skip-checks"),
        ],
        env=env,
        log_dir=log_dir,
    )


# --- the run --------------------------------------------------------------------------------


def workers_start(
    args: argparse.Namespace, env: dict[str, str], log_dir: Path, services: list[Service]
) -> list[Service]:
    """Starts the workers, each registered in `services` at once (so cleanup reaches it)."""
    workers: list[Service] = []
    for number in range(args.workers):
        command = [
            sys.executable,
            *("-m", "bench._send_support", "celery", "-A", "newsletter", "worker"),
            *("-l", "info", "-P", args.pool, "-c", str(args.concurrency)),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            *("-n", f"bench-send-{number}-{os.getpid()}@%h"),
        ]
        worker = service_start(f"worker-{number}", command, env=env, log_dir=log_dir)
        workers.append(worker)
        services.append(worker)
    for worker in workers:
        worker.wait_for_log(r"\bready\b", timeout=90)
    return workers


def profilers_start(
    py_spy: str, targets: list[Service], log_dir: Path, registry: list[Service]
) -> None:
    """py-spy on every process of the targets (prefork children included), 50 samples/s."""
    for target in targets:
        for pid in group_pids(target.process.pid):
            out = log_dir / f"profile-{target.name}-{pid}.txt"
            registry.append(
                service_start(
                    f"py-spy-{pid}",
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        "50",
                        "--format",
                        "raw",
                        "--output",
                        str(out),
                        "--nonblocking",
                    ],
                    env=dict(os.environ),
                    log_dir=log_dir,
                )
            )
    time.sleep(1.0)


def profilers_stop(registry: list[Service]) -> None:
    for service in registry:
        if service.name.startswith("py-spy-") and service.process.poll() is None:
            service.process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for service in registry:
        if service.name.startswith("py-spy-"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=20)


def proc_stats() -> dict[str, dict[str, Any]]:
    import redis

    client = redis.Redis.from_url(STATS_URL, decode_responses=True)
    out = {}
    for key in sorted(client.smembers("bench:procs")):
        out[key.rpartition(":")[2]] = client.hgetall(key)
    return out


def task_stats() -> tuple[dict[str, int], dict[str, float]]:
    import redis

    client = redis.Redis.from_url(STATS_URL, decode_responses=True)
    runs = {k: int(v) for k, v in client.hgetall("bench:task_runs").items()}
    seconds = {k: float(v) for k, v in client.hgetall("bench:task_seconds").items()}
    return runs, seconds


def redis_flush() -> None:
    import redis

    for url in (BROKER_URL, STATS_URL, CACHE_URL):
        redis.Redis.from_url(url).flushdb()


def digest_state(digest_id: int) -> tuple[str, dict[str, int]]:
    from django.db.models import Count

    from digests.models import Digest
    from subscribers.models import Delivery

    status = Digest.objects.filter(pk=digest_id).values_list("status", flat=True).get()
    counts = dict(
        Delivery.objects.filter(digest_id=digest_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return status, counts


def digest_status(digest_id: int) -> str:
    from digests.models import Digest

    return Digest.objects.filter(pk=digest_id).values_list("status", flat=True).get()


def send_measure(
    args: argparse.Namespace,
    digest_id: int,
    env: dict[str, str],
    log_dir: Path,
    workers: list[Service],
    esp: Service,
    registry: list[Service],
) -> dict[str, Any]:
    """Starts the send and polls until the digest is sent; returns wall time and samples."""
    from django.db import connection

    services = [*workers, esp]
    cpu_before = {s.name: group_cpu_seconds(s.process.pid) for s in services}
    busy0, total0 = machine_cpu_ticks()
    polls = 0
    started = time.perf_counter()
    starter = send_start(args, digest_id, env, log_dir)
    if starter is not None:
        services.append(starter)
        registry.append(starter)  # cleaned up with the others, whatever happens
    deadline = started + args.send_timeout
    last_sample = 0.0
    status = ""
    while True:
        status = digest_status(digest_id)
        polls += 1
        now = time.perf_counter()
        if status == "sent":
            break
        if now > deadline:
            raise BenchTimeout(f"the digest is still {status!r} after {args.send_timeout} s")
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
        if now - last_sample > 1.0:
            for service in services:
                service.sample_memory()
            last_sample = now
        time.sleep(0.2)
    wall = time.perf_counter() - started
    busy1, total1 = machine_cpu_ticks()
    for service in services:
        service.sample_memory()
    cpu = {
        s.name: group_cpu_seconds(s.process.pid) - cpu_before.get(s.name, 0.0)
        for s in services
        if s.process.poll() is None
    }
    connection.close()
    if starter is not None:
        starter.process.wait(timeout=60)
    return {
        "wall_s": wall,
        "polls": polls,
        "cpu_s": cpu,
        "machine_busy": (busy1 - busy0) / max(1, total1 - total0),
        "starter": starter,
    }


def naive_run(count: int, digest_id: int) -> dict[str, Any]:
    """The naive way, in this process: per reader, the MJML template rendered by Django and
    compiled by mjml2html with the reader's own links, then one API call through the same
    Mailgun backend, a new HTTP connection per message as `message.send()` without a shared
    connection makes (a reused one meets the fake ESP's 40 ms Nagle stall on every call). The
    issue's content and the per-choice charts come from the rendering module's caches, as in
    the engine: only the per-reader render, compile and call are measured."""
    from django.core.mail import EmailMultiAlternatives
    from django.db.models import Prefetch
    from django.template.loader import render_to_string
    from mjml import mjml2html

    from digests.models import Category, Digest
    from subscribers import rendering
    from subscribers.headers import list_headers
    from subscribers.models import Subscriber
    from subscribers.tokens import Purpose, token_url

    digest = Digest.objects.get(pk=digest_id)
    content = rendering.digest_context(digest=digest)
    readers = list(
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE)
        .order_by("id")
        .prefetch_related(Prefetch("categories", queryset=Category.objects.only("id")))[:count]
    )
    # The charts (one per choice of categories, shared through the cache) are drawn before the
    # clock starts: they cost the same either way and are not what is compared here.
    charts_started = time.perf_counter()
    for key in {rendering.variant_key(c.pk for c in r.categories.all()) for r in readers}:
        rendering.variant_chart(content=content, key=key)
    charts_s = time.perf_counter() - charts_started
    render_s = compile_s = send_s = 0.0
    html_bytes = 0
    started = time.perf_counter()
    for reader in readers:
        t0 = time.perf_counter()
        key = rendering.variant_key(c.pk for c in reader.categories.all())
        chosen = rendering.variant_ids(key)
        cid = rendering.chart_cid_make(digest_id=digest.pk, key=key)
        context = rendering._context(
            content=content, chosen=chosen, language=reader.language, chart_cid=cid
        )
        context["preferences_url"] = token_url(subscriber=reader, purpose=Purpose.PREFERENCES)
        context["unsubscribe_url"] = token_url(subscriber=reader, purpose=Purpose.UNSUBSCRIBE)
        sections = content.sections_for(chosen)
        name = "digest" if sections else "empty"
        source = render_to_string(f"email/{name}.mjml", context)
        text = render_to_string(f"email/{name}.txt", context)
        t1 = time.perf_counter()
        html = mjml2html(source)
        t2 = time.perf_counter()
        html_bytes = max(html_bytes, len(html.encode()))
        message = EmailMultiAlternatives(
            subject=rendering.subject_make(
                content=content, sections=sections, words=context["words"]
            ),
            body=text,
            to=[reader.email],
            headers=list_headers(subscriber=reader),
        )  # no shared connection: message.send() opens EMAIL_BACKEND's own, as send_mail does
        message.attach_alternative(html, "text/html")
        if sections:
            rendering.chart_image_attach(
                message=message, png=rendering.variant_chart(content=content, key=key), cid=cid
            )
        message.send()
        t3 = time.perf_counter()
        render_s += t1 - t0
        compile_s += t2 - t1
        send_s += t3 - t2
    wall = time.perf_counter() - started
    return {
        "readers": len(readers),
        "wall_s": round(wall, 2),
        "emails_per_s": round(len(readers) / wall, 1),
        "extrapolated_100k_s": round(wall / len(readers) * 100_000, 1),
        "render_s": round(render_s, 2),
        "compile_s": round(compile_s, 2),
        "send_s": round(send_s, 2),
        "largest_html_bytes": html_bytes,
        "charts_untimed_s": round(charts_s, 2),
    }


# --- main -----------------------------------------------------------------------------------


def mb(kb: int) -> float:
    return round(kb / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="-c of each worker")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    parser.add_argument(
        "--naive", type=int, default=2000, help="readers for the naive way; 0 skips"
    )
    parser.add_argument("--start", default="task", choices=["task", "command"])
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--timeout", type=float, default=900, help="the whole bench, seconds")
    parser.add_argument("--send-timeout", type=float, default=600)
    parser.add_argument("--keep-db", action="store_true", help="leave bench_send for a look")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        default="",
        help="profile the workers and the fake ESP during the send with this "
        "py-spy binary (collapsed stacks in the log folder)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the workers, e.g. DELIVERY_BATCH_SIZE=500",
    )
    args = parser.parse_args()

    def on_alarm(signum: int, frame: Any) -> None:
        raise BenchTimeout(f"the bench ran longer than --timeout {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    log_dir = Path(tempfile.mkdtemp(prefix="bench-send-"))
    esp_port = free_port()
    env = app_env(esp_port, log_dir / "var", args)
    os.environ.update(env)
    services: list[Service] = []
    failures: list[str] = []
    figures: dict[str, Any] = {"benchmark": "send", "readers": args.readers}
    bench_started = time.perf_counter()
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from digests.models import Category

        say(f"logs: {log_dir}")
        database_recreate(DB_NAME)
        call_command("migrate", verbosity=0, skip_checks=True)
        started = time.perf_counter()
        category_ids = list(
            Category.objects.filter(active=True).order_by("position").values_list("id", flat=True)
        )
        rows, links = readers_insert(args.readers, category_ids, args.seed)
        readers_s = time.perf_counter() - started
        digest = digest_create(args.seed)
        setup_s = time.perf_counter() - started
        variants = variant_count()
        say(
            f"setup: {rows:,} active readers, {links:,} category choices, {variants} distinct "
            f"choices; digest {digest.date} with {len(category_ids)} sections "
            f"(readers {readers_s:.1f} s, with the digest {setup_s:.1f} s)"
        )
        connection.close()
        redis_flush()

        esp = esp_start(esp_port, env, log_dir)
        services.append(esp)
        workers = workers_start(args, env, log_dir, services)
        say(
            f"{args.workers} Celery worker(s), pool {args.pool}, concurrency {args.concurrency}; "
            f"fake ESP on {HOST}:{esp_port}"
        )
        xacts_before = database_xacts(DB_NAME)
        if args.py_spy:
            profilers_start(args.py_spy, [*workers, esp], log_dir, services)

        measured = send_measure(args, digest.pk, env, log_dir, workers, esp, services)
        wall = measured["wall_s"]
        measured.pop("starter")  # registered in `services`: sampled and stopped with them
        if args.py_spy:
            profilers_stop(services)
        status, counts = digest_state(digest.pk)
        esp_figures = esp_counters(esp_port)
        for worker in workers:
            worker.sample_memory()
        esp.sample_memory()
        # Stop the workers: their connections close, PostgreSQL flushes their statistics.
        for worker in workers:
            worker.stop()
        connection.close()
        time.sleep(1.5)
        xacts = database_xacts(DB_NAME) - xacts_before - measured["polls"] - 2
        procs = proc_stats()
        runs, task_seconds = task_stats()

        sent = counts.get("sent", 0)
        queries = sum(int(p.get("queries", 0)) for p in procs.values())
        sql_s = sum(float(p.get("sql_s", 0)) for p in procs.values())
        per_1000 = queries / max(1, sent) * 1000
        peaks: dict[str, float] = {}
        for service in services:
            for pid, kb in service.hwm_kb.items():
                role = service.roles.get(pid, "")
                peaks[f"{service.name}:{role}:{pid}"] = mb(kb)
        for pid, values in procs.items():
            name = f"{values.get('role', '?')}:{pid}"
            if not any(key.endswith(f":{pid}") for key in peaks):
                peaks[name] = mb(int(values.get("hwm_kb", 0)))
        bench_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        say()
        say(
            f"send: {sent:,} sent in {wall:.2f} s = {sent / wall:,.0f} emails/s "
            f"(digest {status}; deliveries by status {counts})"
        )
        say(
            f"ESP: {esp_figures['calls']} API calls (answers {esp_figures['statuses']}), "
            f"{esp_figures['recipients']:,} recipients "
            f"({esp_figures['recipients'] / max(1, esp_figures['accepted_calls']):.0f} per call), "
            f"{esp_figures['distinct_recipients']:,} distinct, "
            f"{esp_figures['duplicates']} received more than once"
        )
        say(
            f"SQL: {queries:,} queries from the engine's processes = {per_1000:.1f} per 1,000 "
            f"recipients, {sql_s:.2f} s waiting on them; PostgreSQL counted {xacts:,} "
            "transactions (the bench's polls taken off)"
        )
        for name, value in sorted(procs.items()):
            say(
                f"  process {name} ({value.get('role')}): {value.get('queries')} queries, "
                f"{float(value.get('sql_s', 0)):.2f} s SQL"
            )
        say("tasks: " + ", ".join(f"{name} x{count}" for name, count in sorted(runs.items())))
        say(
            "task seconds: "
            + ", ".join(f"{name} {secs:.2f} s" for name, secs in sorted(task_seconds.items()))
        )
        say(
            "CPU during the send: "
            + ", ".join(f"{name} {secs:.1f} s" for name, secs in measured["cpu_s"].items())
            + f"; machine busy {measured['machine_busy']:.0%} of {os.cpu_count()} cores"
        )
        say(
            "peak memory (VmHWM) per process: "
            + ", ".join(f"{name} {value} MB" for name, value in sorted(peaks.items()))
        )
        say(f"  the bench itself (seeding, polling): {bench_peak:.0f} MB")

        naive: dict[str, Any] = {}
        if args.naive:
            from django.db import connection as conn

            conn.close()
            esp_before = esp_counters(esp_port)
            naive = naive_run(args.naive, digest.pk)
            esp_after = esp_counters(esp_port)
            naive["esp_calls"] = esp_after["calls"] - esp_before["calls"]
            say()
            say(
                f"naive, {naive['readers']:,} readers (MJML compiled per reader, one API call "
                f"each, in this process): {naive['wall_s']:.2f} s = "
                f"{naive['emails_per_s']:.1f} emails/s, {naive['esp_calls']} ESP calls; "
                f"100,000 would take {naive['extrapolated_100k_s'] / 60:.1f} min "
                f"(compile {naive['compile_s']:.2f} s, render {naive['render_s']:.2f} s, "
                f"send {naive['send_s']:.2f} s)"
            )

        peak_max = max(peaks.values()) if peaks else 0.0
        targets = {
            "wall_under_30s": wall < TARGET_WALL_S,
            "esp_calls_at_most_200": esp_figures["calls"] <= TARGET_ESP_CALLS,
            "sql_per_1000_at_most_10": per_1000 <= TARGET_SQL_PER_1000,
            "peak_under_300mb": peak_max < TARGET_PEAK_MB,
        }
        checks = {
            "digest_sent": status == "sent",
            "every_reader_sent": sent == args.readers and len(counts) == 1,
            "esp_recipients_match": esp_figures["recipients"] == args.readers,
            "no_duplicates": esp_figures["duplicates"] == 0,
        }
        say()
        for name, ok in {**targets, **checks}.items():
            say(
                f"{'MET ' if ok else 'MISSED'}  {name}"
                if name in targets
                else f"{'ok  ' if ok else 'FAILED'}  {name}"
            )
        failures = [name for name, ok in {**targets, **checks}.items() if not ok]
        figures.update(
            {
                "workers": args.workers,
                "pool": args.pool,
                "concurrency": args.concurrency,
                "start": args.start,
                "variants": variants,
                "setup_s": round(setup_s, 2),
                "wall_s": round(wall, 2),
                "emails_per_s": round(sent / wall, 1),
                "sent": sent,
                "deliveries": counts,
                "esp_calls": esp_figures["calls"],
                "esp_recipients": esp_figures["recipients"],
                "esp_duplicates": esp_figures["duplicates"],
                "sql_queries": queries,
                "sql_per_1000": round(per_1000, 2),
                "sql_seconds": round(sql_s, 2),
                "pg_transactions": xacts,
                "tasks": runs,
                "task_seconds": {k: round(v, 2) for k, v in task_seconds.items()},
                "cpu_s": {k: round(v, 2) for k, v in measured["cpu_s"].items()},
                "machine_busy": round(measured["machine_busy"], 3),
                "peak_rss_mb": peaks,
                "peak_rss_max_mb": peak_max,
                "bench_peak_rss_mb": round(bench_peak, 1),
                "naive": naive,
                "targets": targets,
                "checks": checks,
                "targets_met": all(targets.values()),
                "bench_s": round(time.perf_counter() - bench_started, 1),
            }
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit | BenchTimeout | RuntimeError):
            say(f"ERROR: {type(exc).__name__}: {exc}")
        else:
            import traceback

            traceback.print_exc()
        for service in services:
            say(f"--- {service.name} log tail ---\n{service.log_tail(15)}")
        figures["error"] = f"{type(exc).__name__}: {exc}"
        failures = ["error"]
    finally:
        signal.alarm(0)
        for service in reversed(services):
            with contextlib.suppress(Exception):
                service.stop(timeout=10)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            with contextlib.suppress(Exception):
                database_drop(DB_NAME)
        with contextlib.suppress(Exception):
            redis_flush()
    print(json.dumps(figures, ensure_ascii=False))
    return 1 if failures else 0


def variant_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT choice) FROM (SELECT string_agg(category_id::text, ',' "
            "ORDER BY category_id) AS choice FROM subscribers_subscriber_categories "
            "GROUP BY subscriber_id) AS choices"
        )
        return int(cursor.fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
