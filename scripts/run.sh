#!/usr/bin/env bash
# Sets up, builds today's issue and shows it:  bash scripts/run.sh [--serve] [--feed URL_OR_PATH ...]
#
# Creates .venv and installs the requirements when needed, applies the migrations, then runs
# `manage.py run_daily` with your arguments: fetch the arXiv feeds (or the --feed you name, a URL
# or a local file), sort and summarise the papers, draw the chart and print the draft digest.
# Then `manage.py email_preview` writes the email as a reader of every section gets it, as an
# HTML file (chart inline) and as plain text, and prints both paths.
#
#   --serve     afterwards start the site (`manage.py runserver` on 127.0.0.1:$PORT, default
#               8000) with a local admin account (`manage.py local_admin`: its password is
#               printed the first time), so the "Review the draft" link works.
#   --dry-run   print the commands, run nothing (not even the setup).
#   --help      this text.
#
# Offline, pass a local feed:  bash scripts/run.sh --feed tests/fixtures/feeds/arxiv_rss2_sample.xml
# Without OPENAI_API_KEY the pipeline runs on its offline fallbacks and says so.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

serve=false
dry_run=false
daily_args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --serve) serve=true ;;
        --dry-run) dry_run=true ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) daily_args+=("$1") ;;
    esac
    shift
done

PORT="${PORT:-8000}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]]; then
    echo "run.sh: PORT must be a number, got '$PORT'" >&2
    exit 2
fi
if [ "$serve" = true ]; then
    # The links the build and the preview print point at the site this starts.
    export SITE_URL="${SITE_URL:-http://localhost:$PORT}"
fi

step() {  # step ARGS...: print the manage.py command, then run it (unless --dry-run)
    echo "==> manage.py $*"
    [ "$dry_run" = true ] || "$PYTHON" manage.py "$@"
}

if [ "$dry_run" = true ]; then
    PYTHON=python
else
    # shellcheck source=scripts/_venv.sh
    source scripts/_venv.sh
    venv_ensure
fi

step migrate --noinput --verbosity 0
step run_daily ${daily_args[@]+"${daily_args[@]}"}
step email_preview
if [ "$serve" = false ]; then
    echo "==> to open the draft in the admin: bash scripts/run.sh --serve"
    exit 0
fi

step local_admin
echo "==> the site: ${SITE_URL}/admin/ (Ctrl-C stops it)"
[ "$dry_run" = true ] && { echo "==> manage.py runserver 127.0.0.1:$PORT"; exit 0; }
exec "$PYTHON" manage.py runserver "127.0.0.1:$PORT"
