#!/usr/bin/env bash
# Start the scoring API and the UI side by side; stop both (SIGTERM, so the
# prediction log is flushed) when either exits or on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
API_HOST=${API_HOST:-127.0.0.1}
API_PORT=${API_PORT:-8000}
UI_PORT=${UI_PORT:-8501}
WORKERS=${WORKERS:-1}

"$BIN/uvicorn" serving.app:app --host "$API_HOST" --port "$API_PORT" --workers "$WORKERS" &
api=$!
CREDIT_RISK_API_URL=${CREDIT_RISK_API_URL:-http://127.0.0.1:$API_PORT} \
  "$BIN/streamlit" run ui/app.py --server.address 127.0.0.1 --server.port "$UI_PORT" \
  --server.headless true --browser.gatherUsageStats false \
  --client.toolbarMode viewer --client.showErrorDetails false &
ui=$!

stop() { kill -TERM "$api" "$ui" 2>/dev/null || true; wait "$api" "$ui" 2>/dev/null || true; }
trap stop INT TERM EXIT
echo "API on http://$API_HOST:$API_PORT (docs at /docs), UI on http://127.0.0.1:$UI_PORT"
wait -n "$api" "$ui"
