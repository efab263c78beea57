#!/usr/bin/env bash
# Runs the tests, the way the README and CI do:  bash scripts/test.sh [pytest args ...]
#
#   (a) the unit group, `pytest -m "not integration"`, on the embedded defaults: SQLite, Celery
#       running tasks eagerly, no LLM key (the LLM is a local fake where a test needs one);
#   (b) the integration group, `pytest -m integration`, against PostgreSQL and Redis on this
#       machine with a real Celery worker. Locally it skips when they are absent; on CI
#       (CI=true) that is a failure.
#   (c) the real-LLM group, `pytest -m llm_real` (tests/llm_real), against llama.cpp's
#       llama-server with SmolLM2-135M, which `bash scripts/llm_server.sh` builds and caches.
#       Locally it skips when they are absent; on CI that is a failure.
#
# Extra arguments go to every pytest run. Exit status is non-zero when any group fails,
# including a group that ran no test at all (pytest exit 5); for (b) and (c) that counts only on
# CI, so that `bash scripts/test.sh -k something` works locally.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
venv_ensure || { echo "test.sh: could not set up the virtualenv" >&2; exit 1; }

ON_CI=false
[ "${CI:-}" = "true" ] && ON_CI=true

# Variables a developer may have exported for their own setup; the unit group ignores them.
PROJECT_VARS=(
    DATABASE_URL CELERY_BROKER_URL CELERY_RESULT_BACKEND CELERY_TASK_ALWAYS_EAGER REDIS_CACHE_URL
    OPENAI_API_KEY OPENAI_BASE_URL OPENAI_MODEL EMAIL_BACKEND DEBUG SECRET_KEY SITE_URL
    DJANGO_SETTINGS_MODULE
)
while IFS= read -r name; do PROJECT_VARS+=("$name"); done < <(compgen -e | grep '^ANYMAIL_' || true)
UNSET_ARGS=()
for name in "${PROJECT_VARS[@]}"; do UNSET_ARGS+=(-u "$name"); done

describe() {  # describe EXIT_STATUS -> words
    case "$1" in
        0) echo "passed" ;;
        5) echo "ran no test" ;;
        *) echo "FAILED (pytest exit $1)" ;;
    esac
}

# Byte-compiled modules are kept (in __pycache__/, ignored by git) even where the shell sets
# PYTHONDONTWRITEBYTECODE: otherwise every pytest process, and every xdist worker, compiles the
# project and rewrites the tests' asserts again, seconds each time.
UNSET_ARGS+=(-u PYTHONDONTWRITEBYTECODE)

# The unit group runs in parallel (pytest-xdist): one worker per core plus one, so that the
# workers' waits on local servers and sleeps leave no core idle. `--dist load` hands each worker
# its tests in collection order, which keeps pytest-django's order (the one transactional test
# after the others: its flush empties the rows the data migrations made) within each worker.
# Each worker has its own in-memory SQLite database, and the fake servers take free ports.
# `bash scripts/test.sh -n 0` runs it in one process.
UNIT_WORKERS=$(( $(nproc 2>/dev/null || echo 1) + 1 ))

echo "==> unit tests: pytest -m \"not integration and not llm_real\" (SQLite, eager Celery; $UNIT_WORKERS workers)"
env "${UNSET_ARGS[@]}" "$PYTHON" -m pytest -m "not integration and not llm_real" \
    -n "$UNIT_WORKERS" --dist load "$@"
unit=$?

echo "==> integration tests: pytest -m integration (PostgreSQL, Redis, a real Celery worker)"
env "${UNSET_ARGS[@]}" \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/test" \
    CELERY_BROKER_URL="redis://127.0.0.1:6379/15" \
    "$PYTHON" -m pytest -m integration "$@"
integration=$?

echo "==> real LLM server tests: pytest -m llm_real (llama-server, SmolLM2-135M; scripts/llm_server.sh)"
env "${UNSET_ARGS[@]}" "$PYTHON" -m pytest -m llm_real "$@"
llm_real=$?

status=0
[ "$unit" -ne 0 ] && status=1
for group in "$integration" "$llm_real"; do
    if [ "$group" -eq 5 ]; then
        [ "$ON_CI" = true ] && status=1
    elif [ "$group" -ne 0 ]; then
        status=1
    fi
done

echo "test.sh: unit $(describe "$unit"), integration $(describe "$integration"), llm_real $(describe "$llm_real")$([ "$status" -eq 0 ] && echo " -- OK" || echo " -- FAILED")"
exit "$status"
