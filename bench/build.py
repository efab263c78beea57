"""Benchmark: a 1,000-paper day through parse, store, classify, summarise and chart.

The LLM is the fake OpenAI-compatible server from tests/fakes, answering every call after
LATENCY seconds (300 ms by default), reached by the real `openai` client over HTTP. The database
is a fresh SQLite file unless DATABASE_URL is set. Then the same day is rebuilt, which must cost
no LLM calls.

    .venv/bin/python bench/build.py [--papers 1000] [--latency 0.3]

Targets (issue 2): at most 60 LLM calls, under 8 s wall on a 2-core machine, rebuild 0 calls.
The last line of output is JSON with the figures.

Against a real OpenAI-compatible server instead of the fake (issue 10):

    .venv/bin/python bench/build.py --llm-url http://127.0.0.1:8080/v1 --model NAME \
        [--papers 92] [--context 4096]

OPENAI_API_KEY, LLM_CONTEXT_TOKENS, LLM_STALL_SECONDS ... are read from the environment as usual
(`--context` sets LLM_CONTEXT_TOKENS). It prints calls, tokens, batch splits, fallbacks and wall
time; the rebuild is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOPICS = [
    ("cs.CL", "Low-Resource Machine Translation", "translation between languages with little data"),
    ("cs.CV", "Video Object Segmentation", "segmenting objects across video frames"),
    (
        "cs.LG",
        "Quantized Optimizer States",
        "training with low-precision optimizer states and gradients",
    ),
    (
        "cs.CL",
        "Chain-of-Thought Reasoning in Large Language Models",
        "large language model reasoning",
    ),
    (
        "cs.RO",
        "Offline Reinforcement Learning for Robot Manipulation",
        "reward-driven policy learning",
    ),
    (
        "cs.CV",
        "Vision-Language Models for Visual Question Answering",
        "multimodal image-text models",
    ),
    ("cs.LG", "Federated Learning under Client Drift", "federated training across devices"),
    (
        "cs.AI",
        "Retrieval-Augmented Generation with LLM Agents",
        "LLM agents that retrieve and use tools",
    ),
    ("stat.ML", "Generalization Bounds for Deep Networks", "theory of generalization of training"),
    (
        "cs.MA",
        "Multi-Agent Coordination with Bandit Feedback",
        "multi-agent reinforcement learning",
    ),
]


def feed_document(*, count: int, day: date, seed: int = 7) -> bytes:
    """An arXiv RSS 2.0 listing of `count` new papers, in the real feed's shape."""
    rng = random.Random(seed)
    pub = f"{day:%a, %d %b %Y} 00:00:00 -0400"
    items = []
    for number in range(count):
        primary, topic, gist = TOPICS[number % len(TOPICS)]
        arxiv_id = f"{day:%y%m}.{20000 + number:05d}"
        adjective = rng.choice(["Scaling", "Robust", "Efficient", "Sparse"])
        title = f"{topic}: Study {number} of {adjective} Methods"
        sentences = [
            f"We study {gist} and propose a method with complexity $\\mathcal{{O}}(n \\log n)$.",
            f"Experiments on {rng.randint(3, 12)} benchmarks show gains of {rng.randint(1, 30)}%.",
            "We analyse failure modes, ablate each component and release code and data.",
            "Our results suggest directions for future work on evaluation and deployment.",
        ]
        items.append(
            f"""    <item>
      <title>{escape(title)}</title>
      <link>https://arxiv.org/abs/{arxiv_id}</link>
      <description>arXiv:{arxiv_id}v1 Announce Type: new
Abstract: {escape(" ".join(sentences))}</description>
      <guid isPermaLink="false">oai:arXiv.org:{arxiv_id}v1</guid>
      <category>{primary}</category>
      <category>cs.AI</category>
      <pubDate>{pub}</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>Author {number}, Coauthor {rng.randint(1, 999)}</dc:creator>
    </item>"""
        )
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom"
     xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
  <channel>
    <title>cs.AI updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.AI</link>
    <description>cs.AI updates on the arXiv.org e-print archive.</description>
    <language>en-us</language>
    <pubDate>{pub}</pubDate>
{chr(10).join(items)}
  </channel>
</rss>
""".encode()


def timed_log(start: float):  # type: ignore[no-untyped-def]
    """Prints each progress line of the build with the seconds since `start`: the phases."""

    def log(line: str) -> None:
        if not line.startswith(("  ", "Review")):
            print(f"  [{time.perf_counter() - start:5.2f} s] {line}")

    return log


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def django_start(workdir: Path) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def real_server_run(args: argparse.Namespace) -> None:
    """One build of an `args.papers`-paper day against a real server; figures as JSON."""
    os.environ["OPENAI_BASE_URL"] = args.llm_url
    os.environ.setdefault("OPENAI_API_KEY", "no-key")
    if args.model:
        os.environ["OPENAI_MODEL"] = args.model
    if args.context:
        os.environ["LLM_CONTEXT_TOKENS"] = str(args.context)
    django_start(Path(tempfile.mkdtemp(prefix="bench-build-")))
    from django.conf import settings

    from digests.build import digest_build
    from digests.ingest import feed_parse, papers_store
    from digests.llm import llm_usage_for

    day = date(2026, 8, 13)
    papers_store(papers=feed_parse(content=feed_document(count=args.papers, day=day)).papers)
    print(
        f"{args.papers} papers, {settings.OPENAI_MODEL} at {args.llm_url}, "
        f"context {settings.LLM_CONTEXT_TOKENS} tokens"
    )
    start = time.perf_counter()
    report = digest_build(day=day, log=timed_log(start))
    wall = time.perf_counter() - start
    usage = llm_usage_for(digest_date=day)
    by_llm = report.classified.get("llm", 0)
    flags = [f["code"] for s in report.sections for f in s.flags]
    figures = {
        "benchmark": "build-real",
        "model": settings.OPENAI_MODEL,
        "papers": args.papers,
        "context_tokens": settings.LLM_CONTEXT_TOKENS,
        "wall_s": round(wall, 1),
        "llm_calls": usage.calls,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "classified": report.classified,
        "classified_by_llm_share": round(by_llm / max(1, report.paper_count), 3),
        "splits": sum(1 for n in report.classify_notes if "split in two" in n),
        "classify_fallbacks": report.classify_fallbacks,
        "sections_by_llm": sum(1 for s in report.sections if s.source == "llm"),
        "sections_fallback": sum(1 for s in report.sections if s.source == "fallback"),
        "section_flags": flags,
    }
    for note in report.classify_notes + report.classify_fallbacks:
        print(f"  {note}")
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--llm-url", default="", help="a real server's base URL (…/v1)")
    parser.add_argument("--model", default="", help="the model's name on that server")
    parser.add_argument("--context", type=int, default=0, help="LLM_CONTEXT_TOKENS")
    args = parser.parse_args()
    if args.llm_url:
        real_server_run(args)
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-build-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ["OPENAI_API_KEY"] = "bench-key"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI(latency=args.latency) as fake:
        os.environ["OPENAI_BASE_URL"] = fake.base_url
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        call_command("migrate", verbosity=0)
        from digests.build import digest_build
        from digests.ingest import feed_parse, papers_store

        day = date(2026, 8, 13)
        document = feed_document(count=args.papers, day=day)
        print(
            f"{args.papers} papers, fake LLM latency {args.latency * 1000:.0f} ms, "
            f"database {connection.vendor}"
        )

        start = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            parsed = feed_parse(content=document)
            stored = papers_store(papers=parsed.papers)
            parse_s = time.perf_counter() - start
            report = digest_build(day=day, log=timed_log(start))
        wall = time.perf_counter() - start
        first_calls = len(fake.calls)
        print(f"parse + store: {parse_s:.2f} s ({stored.created} papers stored)")
        print(
            f"first build: {wall:.2f} s wall, {first_calls} LLM calls, "
            f"{report.prompt_tokens + report.completion_tokens} tokens, "
            f"{len(queries)} SQL queries, {len(report.sections)} sections"
        )

        start = time.perf_counter()
        rebuild = digest_build(day=day)
        rebuild_wall = time.perf_counter() - start
        rebuild_calls = len(fake.calls) - first_calls
        print(f"rebuild: {rebuild_wall:.2f} s wall, {rebuild_calls} LLM calls")
        assert rebuild.digest_id == report.digest_id

    figures = {
        "benchmark": "build",
        "papers": args.papers,
        "llm_latency_ms": round(args.latency * 1000),
        "wall_s": round(wall, 2),
        "parse_store_s": round(parse_s, 2),
        "llm_calls": first_calls,
        "prompt_tokens": report.prompt_tokens,
        "completion_tokens": report.completion_tokens,
        "sql_queries": len(queries),
        "rebuild_wall_s": round(rebuild_wall, 2),
        "rebuild_llm_calls": rebuild_calls,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "targets_met": first_calls <= 60 and wall < 8 and rebuild_calls == 0,
    }
    print(f"peak memory (max RSS): {figures['peak_rss_mb']} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
