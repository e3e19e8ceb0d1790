#!/usr/bin/env bash
# Builds the Dockerfile and runs the image as a site would, twice: with the embedded SQLite
# store on /data, then with a Redis. Each run must answer /readyz (the session store answers)
# and pass the image's own HEALTHCHECK. No Docker engine needed: the shared container-check
# tool does it with buildah (root; the first run installs its packages and takes minutes).
# usage: bash scripts/container-check.sh     (CONTAINER_CHECK=/path/to/container-check to override)
set -euo pipefail
case "${1:-}" in
  '') ;;
  -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
  *) echo "usage: bash scripts/container-check.sh (no arguments)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

tool="${CONTAINER_CHECK:-../shared/tools/container-check}"
[ -x "$tool" ] || { echo "container-check: $tool not found (the shared folder sits beside the clone)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "container-check: redis-server is needed for the Redis run" >&2; exit 2; }

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

redis_pid=""
redis_dir=$(mktemp -d)
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$redis_dir"
}
trap cleanup EXIT

# production as a site runs it: a fresh 48-character secret, a key and secret that are never used
production=(
  -e NODE_ENV=production
  -e "SESSION_SECRET=$(node -e 'process.stdout.write(require("crypto").randomBytes(36).toString("base64"))')"
  -e IPERNITY_API_KEY=container-check-key
  -e IPERNITY_API_SECRET=container-check-secret
)

failed=()
run() { # $1 = name of the run; the rest goes to the tool
  local name="$1" started=$SECONDS
  shift
  echo "== container-check: $name"
  if "$tool" --path /readyz "$@" "${production[@]}" .; then
    echo "== container-check: $name passed in $((SECONDS - started)) s"
  else
    echo "== container-check: $name FAILED after $((SECONDS - started)) s"
    failed+=("$name")
  fi
}

# 1. the embedded store: the image's defaults (SESSION_STORE=sqlite, DATA_DIR=/data)
run "embedded store (SQLite on /data)" --port "$(free_port)"

# 2. Redis: a private redis-server on a free loopback port, never a shared one
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$redis_dir" --loglevel warning >"$redis_dir/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
run "Redis store" --port "$(free_port)" -e SESSION_STORE=redis -e "REDIS_URL=redis://127.0.0.1:$redis_port"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "container-check: failed: ${failed[*]}" >&2
  exit 1
fi
echo "container-check: both runs passed"
