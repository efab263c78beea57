"""The SMTP sink of bench/send.py: what arrives, counted per recipient and measured per message.

Postfix's `smtp-sink` (C, single process, fast enough not to be the bottleneck) takes the mail.
It is not installed: Debian's `postfix` package is fetched once with `apt-get download` and
unpacked with `dpkg -x` into a cache folder (`BENCH_CACHE`, default /tmp/bench-cache), as
../shared/peers/smtp-side-by-side.sh does.

Counting: `smtp-sink -D PATH` appends every finished mail transaction to PATH, headed by the
`-S` start string and its own records (`X-Rcpt-Args: <address>` per RCPT command, then a
three-line `Received:` header), followed by the message as received with its CRs taken out and
its dots unstuffed. PATH is a FIFO read by a thread of the bench: per message it counts the
recipients and the size of the message on the wire (the DATA: bytes plus one CR per line,
without the final "."), and keeps the largest one in the log folder. The sink writes each
message whole (it copies it from a per-message temporary file, kept on /dev/shm), so messages
of concurrent connections do not interleave.

If the package cannot be had, `python -m bench._smtp_sink PORT FIFO` is an aiosmtpd sink writing
the same records into the FIFO (slower: Python reads the DATA line by line).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

MARKER = b"=====BENCH-SINK-MESSAGE=====\n"
END = b"END-OF-BENCH\n"
F_SETPIPE_SZ = 1031  # Linux fcntl: a 1 MB pipe, so the sink rarely waits for the reader
CACHE = Path(os.environ.get("BENCH_CACHE", "/tmp/bench-cache"))


def smtp_sink_binary(say: Any = print) -> Path | None:
    """smtp-sink from Debian's postfix package, unpacked under CACHE; None when unavailable."""
    root = CACHE / "postfix"
    binary = root / "usr/sbin/smtp-sink"
    if binary.exists():
        return binary
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        return None
    download = Path(tempfile.mkdtemp(prefix="postfix-deb-", dir=CACHE.parent))
    try:
        for attempt in range(2):
            done = subprocess.run(
                ["apt-get", "download", "postfix"],
                cwd=download,
                capture_output=True,
                check=False,
                timeout=300,
            )
            if done.returncode == 0 or attempt:
                break
            say("smtp-sink: apt-get download failed, running apt-get update once")
            subprocess.run(
                ["apt-get", "update"],
                capture_output=True,
                check=False,
                timeout=300,
            )
        debs = list(download.glob("postfix_*.deb"))
        if not debs:
            return None
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(debs[0]), str(root)], check=True, timeout=120)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return binary if binary.exists() else None


def sink_command(port: int, fifo: Path, say: Any = print) -> tuple[list[str], dict[str, str]]:
    """The command line (and extra environment) of a sink on 127.0.0.1:port dumping to fifo."""
    binary = smtp_sink_binary(say)
    if binary is None:
        say("smtp-sink unavailable: falling back to the aiosmtpd sink (slower)")
        return [sys.executable, "-m", "bench._smtp_sink", str(port), str(fifo)], {}
    start = MARKER.decode().replace("\n", "\\n")
    args = [str(binary), "-D", str(fifo), "-S", start, "-m", "1024"]
    if os.geteuid() == 0:
        args += ["-u", "root"]  # required of the super-user; it keeps root's privileges
    args += [f"127.0.0.1:{port}", "1024"]
    return args, {"LD_LIBRARY_PATH": str(binary.parent.parent / "lib/postfix")}


class DumpReader:
    """Reads the sink's FIFO in a thread: recipients per address, per-message wire sizes."""

    def __init__(self, keep_largest: Path | None = None) -> None:
        # The sink's per-message temporary files go beside the FIFO: on tmpfs when there is one.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.folder = Path(tempfile.mkdtemp(prefix="bench-sink-", dir=shm))
        self.fifo = self.folder / "sink.fifo"
        os.mkfifo(self.fifo)
        # Opened read-write: the FIFO always has a writer, so reads block instead of seeing EOF
        # between the sink's messages (it opens and closes the file per message).
        self._fd = os.open(self.fifo, os.O_RDWR)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, F_SETPIPE_SZ, 1 << 20)
        self.keep_largest = keep_largest
        self.recipients: Counter[str] = Counter()
        self.sizes: list[int] = []
        self.size_by_address: dict[str, int] = {}
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.malformed = 0
        self.kind = "smtp-sink"  # or "aiosmtpd"
        self._closed = False
        self._largest = b""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="smtp-sink-reader", daemon=True)
        self._thread.start()

    @property
    def messages(self) -> int:
        with self._lock:
            return len(self.sizes)

    def _run(self) -> None:
        buffer = bytearray()
        scanned = 0
        while True:
            chunk = os.read(self._fd, 1 << 20)
            buffer += chunk
            while True:
                # A message starts with the marker and ends before the next one (which follows
                # the message's final newline).
                found = buffer.find(b"\n" + MARKER, max(scanned, len(MARKER)))
                if found < 0:
                    scanned = max(len(MARKER), len(buffer) - len(MARKER) - 1)
                    break
                self._message(bytes(buffer[len(MARKER) : found + 1]))
                del buffer[: found + 1]
                scanned = 0
            if buffer.startswith(MARKER + END):  # written by close() after the last message
                return

    def _message(self, record: bytes) -> None:
        now = time.time()
        received = record.find(b"\nReceived: ")
        try:
            end = record.index(b"\n", received + 1)
            end = record.index(b"\n", end + 1)
            end = record.index(b"\n", end + 1)
        except ValueError:
            self.malformed += 1
            return
        if received < 0:
            self.malformed += 1
            return
        body = record[end + 1 : -1]  # the last "\n" stands for the terminating ".\r\n"
        size = len(body) + body.count(b"\n")  # CRLF on the wire
        addresses = [
            line[len(b"X-Rcpt-Args: ") :].split(b">", 1)[0].lstrip(b"<").decode().lower()
            for line in record[:received].split(b"\n")
            if line.startswith(b"X-Rcpt-Args: ")
        ]
        with self._lock:
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
            self.sizes.append(size)
            for address in addresses:
                self.recipients[address] += 1
                self.size_by_address[address] = size
            if size > len(self._largest):
                self._largest = body

    def close(self, timeout: float = 60) -> None:
        """Waits for the messages already written, then ends the reader."""
        if self._closed:
            return
        self._closed = True
        os.write(self._fd, MARKER + END)
        self._thread.join(timeout)
        os.close(self._fd)
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.keep_largest is not None and self._largest:
            self.keep_largest.write_bytes(self._largest)

    def figures(self, expected: list[str], six_category: set[str]) -> dict[str, Any]:
        """Counts against the expected addresses (each exactly once) and message sizes."""
        with self._lock:
            counts = dict(self.recipients)
            sizes = list(self.sizes)
            six = [self.size_by_address[a] for a in six_category if a in self.size_by_address]
        wanted = set(expected)
        return {
            "kind": self.kind,
            "messages": len(sizes),
            "recipients": sum(counts.values()),
            "distinct_recipients": len(counts),
            "duplicates": sum(n - 1 for n in counts.values() if n > 1),
            "missing": len(wanted - counts.keys()),
            "unexpected": len(counts.keys() - wanted),
            "malformed": self.malformed,
            "size_max_bytes": max(sizes, default=0),
            "size_mean_bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
            "size_total_mb": round(sum(sizes) / 1e6, 1),
            "six_category_messages": len(six),
            "six_category_size_max_bytes": max(six, default=0),
            "first_message_at": self.first_at,
            "last_message_at": self.last_at,
        }


# --- the aiosmtpd fallback --------------------------------------------------------------------


def aiosmtpd_main(port: int, fifo: str) -> None:
    """An aiosmtpd sink on 127.0.0.1:port writing smtp-sink's dump records into fifo."""
    import signal

    from aiosmtpd.controller import Controller

    out = os.open(fifo, os.O_WRONLY)
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            content = envelope.original_content or envelope.content
            if isinstance(content, str):
                content = content.encode()
            body = content.replace(b"\r\n", b"\n")
            record = [MARKER, b"X-Client-Addr: 127.0.0.1\n"]
            record += [f"X-Rcpt-Args: <{a}>\n".encode() for a in envelope.rcpt_tos]
            record += [b"Received: from aiosmtpd\n\tby bench\n\tnow\n", body]
            if not body.endswith(b"\n"):
                record.append(b"\n")
            record.append(b"\n")
            with lock:
                os.write(out, b"".join(record))
            return "250 2.0.0 Ok"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("aiosmtpd sink ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    aiosmtpd_main(int(sys.argv[1]), sys.argv[2])
