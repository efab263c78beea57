#!/usr/bin/env bash
# Sets up and builds today's issue:  bash scripts/run.sh [--feed URL_OR_PATH ...]
#
# Creates .venv and installs the requirements when needed, applies the migrations, then runs
# `manage.py run_daily` with your arguments: fetch the arXiv feeds (or the --feed you name, a URL
# or a local file), sort and summarise the papers, draw the chart and print the draft digest.
#
# Offline, pass a local feed:  bash scripts/run.sh --feed tests/fixtures/feeds/arxiv_rss2_sample.xml
# Without OPENAI_API_KEY the pipeline runs on its offline fallbacks and says so.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
venv_ensure

echo "==> manage.py migrate"
"$PYTHON" manage.py migrate --noinput --verbosity 0
echo "==> manage.py run_daily $*"
exec "$PYTHON" manage.py run_daily "$@"
