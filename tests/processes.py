"""Processes that the integration tests and the benchmarks start: a command in its own process
group (so stopping it reaches prefork children), with its output in a log file."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServiceFailed(RuntimeError):
    pass


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        state = "exited" if self.process.poll() is not None else f"no {pattern!r} in {timeout} s"
        raise ServiceFailed(f"{self.name} did not start ({state}). Its log:\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a Celery worker finishes its tasks), then SIGKILL to its process group."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        # Prefork children left behind by a killed parent share its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


S = TypeVar("S", bound=Service)


def service_start(
    name: str,
    args: list[str],
    *,
    env: dict[str, str],
    log_dir: Path,
    kind: type[S] = Service,  # type: ignore[assignment]
) -> S:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches the children
        )
    return kind(name=name, process=process, log_path=log_path)


def celery_worker_start(
    name: str, *, env: dict[str, str], log_dir: Path, pool: str = "prefork", concurrency: int = 2
) -> Service:
    """A Celery worker of the project (prefork with `concurrency` children, or solo), ready to
    take tasks when this returns; stopped again if it does not start."""
    args = [sys.executable, "-m", "celery", "-A", "newsletter", "worker", "-l", "info"]
    args += ["-P", pool, *(("-c", str(concurrency)) if pool == "prefork" else ())]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    args += ["-n", f"{name}-{os.getpid()}@%h"]
    worker = service_start(name, args, env=env, log_dir=log_dir)
    try:
        worker.wait_for_log(r"\bready\.", timeout=60)
    except ServiceFailed:
        worker.stop()
        raise
    return worker
