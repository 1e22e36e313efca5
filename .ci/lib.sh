# Helpers for the contract checks (.ci/schemathesis, .ci/clients/run):
# the pinned Python tools in a virtual environment under target/, and a real
# `guichet serve --demo` on a fresh SQLite file or a throwaway PostgreSQL
# database. Source it from the repository root.

CI_TOOLS="${GUICHET_CI_TOOLS:-$PWD/target/ci-tools}"
CI_VENV="$CI_TOOLS/venv"
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
PG_ADMIN_URL="${GUICHET_CI_PG_ADMIN_URL:-${GUICHET_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"

# The demo accounts the contract checks sign in with (organization fractio).
DEMO_ORG=fractio
DEMO_CUSTOMER_EMAIL=sophie.laurent@example.com
DEMO_CUSTOMER_PASSWORD='Sophie-Demo-2026!'
DEMO_ADMIN_EMAIL=admin@fractio.guichet.localhost
DEMO_ADMIN_PASSWORD='Admin-Fractio-2026!'

# The Python the tools run on: the newest CPython 3.12 or later found on
# PATH or in pyenv, else python3. (CPython 3.11.7 can crash inside
# schemathesis with "SystemError: AST constructor recursion depth
# mismatch", a bug of that release fixed in later ones.)
ci_python() {
  local candidate
  for candidate in python3.14 python3.13 python3.12 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[4-9].*/bin/python3 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13.*/bin/python3 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  command -v python3
}

# Installs the pinned Python tools into the virtual environment, once (and
# again when the chosen Python changes).
python_tools() {
  local python version
  python=$(ci_python)
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ -x "$CI_VENV/bin/python" ] &&
    [ "$("$CI_VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$version" ]; then
    rm -rf "$CI_VENV"
  fi
  if [ ! -x "$CI_VENV/bin/python" ]; then
    echo "Python tools on $("$python" --version 2>&1)"
    "$python" -m venv "$CI_VENV" || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      python3 -m venv "$CI_VENV"
    }
  fi
  local want=("schemathesis==$SCHEMATHESIS_VERSION" "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION")
  local have
  have=$("$CI_VENV/bin/pip" freeze 2>/dev/null || true)
  local missing=()
  for pkg in "${want[@]}"; do
    grep -qixF "$pkg" <<<"$have" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    "$CI_VENV/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
  fi
}

# The guichet binary, built once.
guichet_bin() {
  cargo build -q --bin guichet >&2
  echo "$PWD/target/debug/guichet"
}

# start_server BACKEND WORKDIR: `guichet serve --demo` on a free port of
# 127.0.0.1, on a fresh SQLite file (BACKEND=sqlite) or a new PostgreSQL
# database (BACKEND=postgres), with the per-IP limits raised: every request
# of a contract check comes from 127.0.0.1. Sets BASE_URL and SERVER_PID;
# the log goes to WORKDIR/server.log.
start_server() {
  local backend=$1 dir=$2 url
  mkdir -p "$dir"
  SERVER_PG_DB=
  case "$backend" in
    sqlite) url="sqlite://$dir/guichet.db" ;;
    postgres)
      SERVER_PG_DB="${GUICHET_TEST_DB_PREFIX:-guichet_ci}_contract_$$_$RANDOM"
      psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$SERVER_PG_DB\"" >/dev/null
      url="${PG_ADMIN_URL%/*}/$SERVER_PG_DB"
      ;;
    *) echo "unknown backend $backend" >&2; return 1 ;;
  esac
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  BASE_URL="http://127.0.0.1:$port"
  env -u GUICHET_JWT_SECRET -u GUICHET_ENV -u GUICHET_LISTEN \
    GUICHET_LOG=warn GUICHET_LOG_FORMAT=text \
    "$(guichet_bin)" serve --demo --listen "127.0.0.1:$port" \
    --database-url "$url" --data-dir "$dir/data" \
    --debit-interval-secs 0 \
    --auth-rate-limit 100000 --auth-sign-in-limit 100000 \
    --auth-code-send-limit 100000 --auth-registration-limit 100000 \
    --code-send-limit-per-ip 100000 --code-send-limit-per-destination 100000 \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  echo "the server did not start:" >&2
  tail -n 40 "$dir/server.log" >&2
  return 1
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
  if [ -n "${SERVER_PG_DB:-}" ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$SERVER_PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    SERVER_PG_DB=
  fi
}

# sign_in PATH EMAIL PASSWORD: the access token of a demo account.
sign_in() {
  local path=$1 email=$2 password=$3
  curl -fsS -X POST "$BASE_URL$path" -H 'Content-Type: application/json' \
    -d "{\"organization\":\"$DEMO_ORG\",\"email\":\"$email\",\"password\":\"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# --- a local S3-compatible store for the blob store's S3 path ---------------
MOTO_VERSION=5.2.5
# Credentials the local store accepts (it checks none); never real ones.
S3_TEST_ACCESS_KEY=guichet-ci
S3_TEST_SECRET_KEY=guichet-ci-secret
S3_TEST_REGION=us-east-1

# Installs moto's S3 server (pinned) into the virtual environment, once.
s3_tools() {
  if [ ! -x "$CI_VENV/bin/python" ]; then
    python3 -m venv "$CI_VENV" || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      python3 -m venv "$CI_VENV"
    }
  fi
  if ! "$CI_VENV/bin/pip" freeze 2>/dev/null | grep -qixF "moto==$MOTO_VERSION"; then
    echo "installing moto[server]==$MOTO_VERSION"
    "$CI_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
}

# start_s3 WORKDIR BUCKET: moto_server on a free port of 127.0.0.1 with
# BUCKET created in it. Sets S3_ENDPOINT and S3_PID; the log goes to
# WORKDIR/moto.log.
start_s3() {
  local dir=$1 bucket=$2 port
  mkdir -p "$dir"
  s3_tools
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  S3_ENDPOINT="http://127.0.0.1:$port"
  "$CI_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  S3_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$S3_ENDPOINT/" 2>/dev/null && break
    kill -0 "$S3_PID" 2>/dev/null || { cat "$dir/moto.log" >&2; return 1; }
    sleep 0.2
  done
  # CreateBucket is a plain PUT on the bucket for the local store.
  curl -fsS -X PUT "$S3_ENDPOINT/$bucket" >/dev/null
}

stop_s3() {
  if [ -n "${S3_PID:-}" ]; then
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=
  fi
}
