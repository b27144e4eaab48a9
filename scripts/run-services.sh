#!/usr/bin/env bash
# Start the scoring API and the UI side by side; stop both (SIGTERM, so the
# prediction log is flushed) when either exits or on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
UI_PORT=${UI_PORT:-8501}
WORKERS=${WORKERS:-1}

# the API binds to serving.host:serving.port (config/model_config.yaml; 127.0.0.1:8000)
"$BIN/python" -m serving.app --workers "$WORKERS" &
api=$!
"$BIN/streamlit" run ui/app.py --server.address 127.0.0.1 --server.port "$UI_PORT" \
  --server.headless true --browser.gatherUsageStats false \
  --client.toolbarMode viewer --client.showErrorDetails false &
ui=$!

stop() { kill -TERM "$api" "$ui" 2>/dev/null || true; wait "$api" "$ui" 2>/dev/null || true; }
trap stop INT TERM EXIT
echo "API on http://127.0.0.1:8000 (docs at /docs), UI on http://127.0.0.1:$UI_PORT"
wait -n "$api" "$ui"
