# shellcheck shell=bash
# Sourced by the scripts in scripts/ (not run): the repository root, logging,
# clean-up at exit, the one Python venv, and `need`, the prerequisites a script
# declares instead of relying on the order another script runs things in.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   need venv package consul    # each is made at most once per run
#
# `need X` runs need_X unless X was already made during this run: the first
# script of a run creates a marker directory ($CLS_NEED_DIR, exported), so
# scripts it starts (scripts/test.sh -> test-node.sh -> build-wasm.sh) share it.
# A script run alone makes what it needs itself.
#
# Environment: VENV (default <repo>/.venv), PYTHON (the interpreter a new venv
# is made from, default python3).

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export VENV="${VENV:-$repo/.venv}"
# The packaging tools (maturin, zig, auditwheel): apart from $VENV, as before.
PACKAGING_VENV="$repo/target/packaging/venv"
py="$VENV/bin/python"
script_name="$(basename "$0" .sh)"

log() { printf '%s: %s\n' "$script_name" "$*" >&2; }
die() { log "$*"; exit 1; }
stage() { printf '\n==> %s\n' "$*" >&2; }

# at_exit CMD: run CMD (a string, eval'd) when the script exits; several may be
# registered (a plain `trap ... EXIT` would replace the others).
_at_exit=()
_run_at_exit() {
  local c
  for c in "${_at_exit[@]}"; do eval "$c" || true; done
}
at_exit() {
  _at_exit+=("$1")
  trap _run_at_exit EXIT
}

# -- counting checks (a script made of many: test-packages, test-node-host) ----------

passed=0
failed=0
failures=()
ok() { passed=$((passed + 1)); log "ok: $*"; }
not_ok() { failed=$((failed + 1)); failures+=("$*"); log "FAILED: $*"; }
# check NAME COMMAND...: one check that passes when the command does.
check() {
  local name="$1"
  shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# count NAME PASSED FAILED STATUS: adds a test runner's counts to the totals; a run
# that executed nothing, or exited non-zero with no failure counted, fails.
count() {
  local name="$1" p="$2" f="$3" status="$4"
  log "$name: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
  if [[ "$p" -eq 0 ]]; then not_ok "$name ran no test"; fi
  if [[ "$status" -ne 0 && "$f" -eq 0 ]]; then not_ok "$name exited $status"; fi
  if [[ "$f" -ne 0 ]]; then failures+=("$name: $f failed"); fi
}
# report LABEL: the failures, the line "LABEL: N passed, N failed"; fails when any did.
report() {
  local f
  for f in "${failures[@]}"; do log "failed: $f"; done
  echo "$1: $passed passed, $failed failed"
  [[ "$failed" -eq 0 ]]
}

# tap_counts FILE: "PASSED FAILED" from a node --test TAP report.
tap_counts() {
  awk '$1 == "#" && $2 == "pass" { p = $3 } $1 == "#" && $2 == "fail" { f = $3 } END { print p + 0, f + 0 }' "$1"
}

# no_outside_servers: forget any Consul or AWS the caller's environment points
# at; the tests and the benchmark start their own servers.
no_outside_servers() {
  unset CONSUL_HTTP_ADDR CONSUL_HTTP_TOKEN CONSUL_HTTP_TOKEN_PATH CONSUL_CACERT CONSUL_CACERT_PATH \
    AWS_PROFILE AWS_ENDPOINT_URL 2>/dev/null || true
}

# rust_targets TRIPLE...: the rustup targets, added when missing.
rust_targets() {
  local t installed
  installed="$(rustup target list --installed)"
  for t in "$@"; do
    if ! grep -qx "$t" <<<"$installed"; then
      log "adding the $t target"
      rustup target add "$t" >&2
    fi
  done
}

# -- Python ---------------------------------------------------------------------------

# The requirements, by purpose (one place for their version ranges).
REQ_SERVERS=('moto[server]>=5,<6' 'boto3>=1.28' 'requests>=2.31')
REQ_TEST=('pytest>=8,<10')
REQ_BUILD=('maturin>=1.9,<2')
REQ_AUDIT=('auditwheel>=6,<7')
REQ_ZIG=('ziglang>=0.13,<0.18' 'cargo-zigbuild>=0.24,<0.25')
REQ_LINT=('mypy>=2,<3' 'ruff>=0.17,<0.18'
  'boto3-stubs[lambda,ssm,resourcegroupstaggingapi,sts,iam]' 'types-requests')

# venv_ensure [--python PY] [--clean] DIR [PIP_SPEC...]: the venv DIR (made from
# PY, default $PYTHON or python3, when missing) with the specs installed; unless
# --clean, tests/support (the cls_support package) is put on its path through a
# cls_support.pth file. The one way the scripts make a venv.
venv_ensure() {
  local python="${PYTHON:-python3}" support=true
  while [[ "${1:-}" == --* ]]; do
    case "$1" in
      --python) python="$2"; shift 2 ;;
      --clean) support=false; shift ;;
      *) die "venv_ensure: unknown option $1" ;;
    esac
  done
  local dir="$1"
  shift
  if [[ ! -x "$dir/bin/python" ]]; then
    log "creating venv $dir ($python)"
    "$python" -m venv "$dir"
  fi
  if [[ $# -gt 0 ]]; then
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2
  fi
  if $support; then
    local site
    site="$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$repo/tests/support" >"$site/cls_support.pth"
  fi
}

# -- prerequisites ----------------------------------------------------------------------

# need_init: start a run (the marker directory) unless one is under way; scripts
# that run others call it first, so that those share what is made.
need_init() {
  if [[ -z "${CLS_NEED_DIR:-}" ]]; then
    CLS_NEED_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cls-need.XXXXXX")"
    export CLS_NEED_DIR
    at_exit 'rm -rf "$CLS_NEED_DIR"'
  fi
}

need() {
  need_init
  local what
  for what in "$@"; do
    if [[ ! -f "$CLS_NEED_DIR/$what" ]]; then
      "need_$what"
      provided "$what"
    fi
    # What it exports (need_X writes X.env), for every script of the run.
    # shellcheck disable=SC1090
    if [[ -f "$CLS_NEED_DIR/$what.env" ]]; then source "$CLS_NEED_DIR/$what.env"; fi
  done
}

# provided X: X has been made in this run (by a script that makes it anyway).
provided() {
  if [[ -n "${CLS_NEED_DIR:-}" ]]; then : >"$CLS_NEED_DIR/$1"; fi
}

# The project venv ($VENV): servers (moto), the test runner and maturin.
need_venv() {
  log "venv $VENV: moto[server], boto3, requests, pytest, maturin"
  venv_ensure "$VENV" "${REQ_SERVERS[@]}" "${REQ_TEST[@]}" "${REQ_BUILD[@]}"
}

# parliament, the IAM linter of tests/cdk/lint_iam.py: its own venv, target/cdk/venv-iam-lint,
# from scripts/requirements/iam-lint.txt (pinned, --require-hashes), made again only when that
# lock changes. Exports IAM_LINT_PYTHON.
need_iam_lint() {
  local dir="$repo/target/cdk/venv-iam-lint" lock="$repo/scripts/requirements/iam-lint.txt" sum
  sum="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [[ -x "$dir/bin/python" && "$(cat "$dir/.lock.sha256" 2>/dev/null)" == "$sum" ]]; then
    log "parliament: $dir matches ${lock#"$repo"/}"
  else
    log "parliament: $dir from ${lock#"$repo"/} (pip --require-hashes)"
    rm -rf "$dir"
    venv_ensure --clean "$dir" --require-hashes -r "$lock"
    printf '%s\n' "$sum" >"$dir/.lock.sha256"
  fi
  printf 'export IAM_LINT_PYTHON=%q\n' "$dir/bin/python" >"$CLS_NEED_DIR/iam_lint.env"
}

# ruff, mypy and the type stubs, in the project venv.
need_lint() {
  need venv
  log "ruff, mypy and the boto3/requests type stubs"
  venv_ensure "$VENV" "${REQ_LINT[@]}"
}

# The package built from this tree (the Rust core as a release wheel, with the
# host's Python files) installed in the project venv, from target/wheels. In a run
# that built dist/ already (scripts/test.sh does first), dist's x86_64 manylinux
# wheel is this tree's: it is copied there, not built a second time.
# dist_built_here: this run built dist/ in the tree (need packages), so its files are this tree's.
dist_built_here() { [[ -n "${CLS_NEED_DIR:-}" && -f "$CLS_NEED_DIR/packages" && -z "${DIST:-}" ]]; }

need_package() {
  need venv
  local out="$repo/target/wheels" built=""
  mkdir -p "$out"
  rm -f "$out"/consul_lambda_sync-*.whl
  if dist_built_here && [[ "$(uname -m)" == x86_64 ]]; then
    built="$(ls "$repo"/dist/consul_lambda_sync-*-manylinux*_x86_64.whl 2>/dev/null | head -n1)"
  fi
  if [[ -n "$built" ]]; then
    log "the consul-lambda-sync wheel: dist/$(basename "$built") (built in this run)"
    cp "$built" "$out/"
  else
    log "building the consul-lambda-sync wheel (maturin, release)"
    (cd "$repo/bindings/python" && "$VENV/bin/maturin" build --release --interpreter "$py" --out "$out" >&2)
  fi
  local wheel
  wheel="$(ls "$out"/consul_lambda_sync-*.whl | head -n1)"
  "$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel" >&2
  "$py" -c 'import consul_lambda_sync.host.cli, consul_lambda_sync as c, sys; print("package", c.version(), file=sys.stderr)'
}

# lambda_zip_for_tests [--fresh]: the path of the x86_64 Lambda zip the end-to-end
# suites run (tests/e2e/test_package.py). dist's, when this run built dist/ already
# (scripts/test.sh does first: the same build-lambda-zip.sh on the same wheel); else
# target/lambda/e2e.zip, built when missing (--fresh: always).
lambda_zip_for_tests() {
  need_init
  local zip="$repo/dist/consul-lambda-sync-lambda-x86_64.zip"
  if dist_built_here && [[ -f "$zip" ]]; then
    log "the Lambda deployment package: dist/$(basename "$zip") (built in this run)"
    echo "$zip"
    return
  fi
  zip="$repo/target/lambda/e2e.zip"
  if [[ "${1:-}" == --fresh || ! -f "$zip" ]]; then
    log "building the Lambda deployment package"
    bash "$repo/scripts/build-lambda-zip.sh" --out "$zip" >/dev/null
  fi
  echo "$zip"
}

# A consul binary (built once from its Go module, cached): $CONSUL_BIN.
need_consul() {
  local bin="${CONSUL_BIN:-}"
  [[ -n "$bin" ]] || bin="$(bash "$repo/scripts/install-consul.sh")"
  log "consul: $bin"
  printf 'export CONSUL_BIN=%q\n' "$bin" >"$CLS_NEED_DIR/consul.env"
}

# -- Node -----------------------------------------------------------------------------

# npm_ci_for DIR [NPM_ARGS...]: DIR/node_modules as its package-lock.json says (npm ci
# only when the lock file changed; packages cached in ~/.npm).
npm_ci_for() {
  local dir="$1" sum stamp
  shift
  stamp="$dir/node_modules/.consul-lambda-sync-lock.sha256"
  sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    log "${dir#"$repo"/}/node_modules matches package-lock.json"
    return
  fi
  log "npm ci (${dir#"$repo"/}; cached in ~/.npm)"
  (cd "$dir" && npm ci --prefer-offline --no-audit --no-fund "$@" >&2)
  printf '%s\n' "$sum" >"$stamp"
}

# bindings/node/node_modules: the core's build tools and tests.
need_npm() { npm_ci_for "$repo/bindings/node"; }

# bindings/cdk/node_modules (jsii, jsii-pacmak, aws-cdk-lib).
need_cdk_npm() { npm_ci_for "$repo/bindings/cdk"; }

# The native addon of bindings/node (release; cargo skips what is up to date).
need_addon() {
  need npm
  log "native addon (napi build --release)"
  (cd "$repo/bindings/node" && npm run --silent build >&2)
}

# wasm/pkg-web and wasm/pkg-node (scripts/build-wasm.sh keeps them when current).
need_wasm() {
  need npm
  log "WebAssembly build"
  bash "$repo/scripts/build-wasm.sh" >&2
}

# dist/: every package (scripts/build-packages.sh; repacks when nothing changed).
need_packages() {
  bash "$repo/scripts/build-packages.sh" >&2
}

# -- Node.js releases from the npm registry ------------------------------------------

# The Node.js releases the tests run on (CI: the Node host suite and the npm package on
# both; the deployed registrator on the one its template names).
NODE_RELEASES=(22.23.5 24.22.3)

# cache_root: where built and fetched tools are kept between runs.
cache_root() {
  local d="${CONSUL_LAMBDA_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consul-lambda-sync}"
  mkdir -p "$d"
  (cd "$d" && pwd -P)
}

# node_release VERSION [ARCH]: the path of Node.js VERSION's `node` binary for ARCH (x64,
# the default, or arm64), from the npm registry's node-linux-ARCH package (the binary the
# `node` package installs), fetched once into the cache.
node_release() {
  local version="$1" arch="${2:-x64}" dir
  dir="$(cache_root)/node-$version-linux-$arch"
  if [[ ! -x "$dir/bin/node" ]]; then
    log "fetching Node.js $version ($arch) from the npm registry (node-linux-$arch@$version)"
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null && tar -xzf node-linux-"$arch"-*.tgz) >&2
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  printf '%s\n' "$dir/bin/node"
}

# with_node VERSION CMD...: CMD with Node.js VERSION first on PATH (npm and npx stay the
# system's: they run on whichever node is first).
with_node() {
  local bin
  bin="$(node_release "$1")"
  shift
  PATH="$(dirname "$bin"):$PATH" "$@"
}
