#!/usr/bin/env bash
# Start the scoring API and the UI side by side; stop both (SIGTERM, so the
# prediction log is flushed) when either exits, on Ctrl-C or on SIGTERM.
# PORT (default serving.port), UI_PORT (default 8501) and WORKERS come from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
UI_PORT=${UI_PORT:-8501}
WORKERS=${WORKERS:-1}

# the API binds to serving.host and PORT, else serving.port (config/model_config.yaml: 127.0.0.1:8000)
read -r HOST CONFIGURED_PORT < <("$BIN/python" -c '
from credit_risk.config import Settings, load_project_config
serving = load_project_config(Settings().config_dir).model.serving
print(serving.host, serving.port)')
PORT=${PORT:-$CONFIGURED_PORT}
API_URL="http://$HOST:$PORT"

"$BIN/python" -m serving.app --workers "$WORKERS" --port "$PORT" &
api=$!
CREDIT_RISK_API_URL=${CREDIT_RISK_API_URL:-$API_URL} "$BIN/streamlit" run ui/app.py \
  --server.address 127.0.0.1 --server.port "$UI_PORT" \
  --server.headless true --browser.gatherUsageStats false \
  --client.toolbarMode viewer --client.showErrorDetails false &
ui=$!

stop() { kill -TERM "$api" "$ui" 2>/dev/null || true; wait "$api" "$ui" 2>/dev/null || true; }
# asked to stop (Ctrl-C, SIGTERM): drain both, then exit 0; a service that died on its own: its code
trap 'stop; echo "stopped: the API and the UI have shut down cleanly"; exit 0' INT TERM
trap stop EXIT
echo "API on $API_URL (docs at $API_URL/docs), UI on http://127.0.0.1:$UI_PORT"
status=0
wait -n "$api" "$ui" || status=$?
echo "a service stopped on its own (exit $status); stopping the other" >&2
exit "$status"
