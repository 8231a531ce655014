#!/usr/bin/env bash
# Run the openai backend's suite against a real vLLM (or any OpenAI-compatible server) by URL:
# the backend contract suite, the CJK/emoji prompt, 4 concurrent streams, vLLM's token-id keys and
# its logprob limit (scripts/remote/test_remote_server.py). Nothing is started here.
#
# On the GPU box, for example:
#   vllm serve HuggingFaceTB/SmolLM2-135M --port 8000 --max-logprobs 20      # default logprobs-mode: raw_logprobs
# then, from a checkout with the dev extra installed (the box itself, or a machine that reaches it):
#   scripts/vllm-suite.sh http://GPU-BOX:8000 [SERVED-MODEL]
# Environment: LMREAD_REMOTE_KEY_ENV=NAME (the variable holding an API key), LMREAD_REMOTE_N_PARAMS=N
# (vLLM does not publish the parameter count), PYTHON (default .venv/bin/python).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BASE_URL [SERVED_MODEL]" >&2; exit 2; }
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export LMREAD_REMOTE_URL=$1
export LMREAD_REMOTE_MODEL=${2:-}
exec "$PY" -m pytest -q -p no:cacheprovider scripts/remote/test_remote_server.py
