#!/usr/bin/env bash
# k6 with the k6/x/kafka extension for scenarios/k6/, built with xk6 from the Go module proxy at
# the versions pinned below, into .cache/k6/ (outside git). Go's own caches go to .cache/go, so a
# build touches nothing outside the repository.
#
#   bash scripts/k6.sh build   build, or say it is up to date (the stamp next to the binary
#                              records the pins, the extension's sources and the Go version)
#   bash scripts/k6.sh path    print the binary's path; exit 3 when it is not built or out of date
#
# A first build downloads k6's modules and compiles for 3-5 minutes on two cores; a rebuild
# after a pin change reuses the caches.
set -euo pipefail

# --- The pins: the one place that says what is built -----------------------------------------
# xk6 v0.13.0: the xk6 the module proxy serves; it builds any k6 v1 (it writes a main package
# that imports k6 and the extensions, then runs go build).
XK6_VERSION=v0.13.0
# k6 v1.7.1 runs TypeScript natively and matches @types/k6 1.7.
K6_VERSION=v1.7.1
# The module that provides k6/x/kafka, as xk6's --with takes it: MODULE[@VERSION][=REPLACEMENT].
# github.com/mostafa/xk6-kafka is refused by the module proxy (403 for every version), so this
# is phasebench's own subset of its API in scripts/k6/kafka (read its package comment). Where the
# proxy serves xk6-kafka, a pure-Go release built on k6 v1 works instead:
#   KAFKA_EXTENSION=github.com/mostafa/xk6-kafka@v1.3.0
KAFKA_EXTENSION="phasebench.local/k6-kafka=./scripts/k6/kafka"
# ----------------------------------------------------------------------------------------------

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache/k6"
binary="$cache/k6"
stamp="$cache/k6.stamp"
xk6="$cache/xk6-$XK6_VERSION"

die() {
  echo "k6.sh: $*" >&2
  exit 1
}

# Serialises builds, so two test workers that both need k6 build it once, not over each other.
lock() {
  mkdir -p "$cache"
  exec 9>"$cache/build.lock"
  flock -w 900 9 || die "another k6.sh build has held $cache/build.lock for 15 minutes"
}

# Go's caches inside the repository; the module cache writable so `rm -rf .cache` works.
# GOTOOLCHAIN=local: a module asking for a newer Go fails here, with its reason, instead of
# trying to download a toolchain.
go_env() {
  export GOPATH="$root/.cache/go"
  export GOMODCACHE="$root/.cache/go/pkg/mod"
  export GOCACHE="$root/.cache/go/build"
  export GOTOOLCHAIN=local
  export GOFLAGS="-modcacherw -buildvcs=false"
  export GOWORK=off
  export CGO_ENABLED=0
}

# What the binary was built from: the pins, every file of a local extension, and the Go version.
wanted_stamp() {
  echo "xk6 $XK6_VERSION"
  echo "k6 $K6_VERSION"
  echo "extension $KAFKA_EXTENSION"
  local replacement="${KAFKA_EXTENSION#*=}"
  if [[ "$KAFKA_EXTENSION" == *=* && -d "$root/$replacement" ]]; then
    (cd "$root/$replacement" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum |
      sed 's/ .*//; s/^/extension sources /'
  fi
  go version
}

up_to_date() {
  [[ -x "$binary" && -f "$stamp" ]] && [[ "$(<"$stamp")" == "$(wanted_stamp)" ]]
}

require_go() {
  command -v go >/dev/null || die "Go is not installed: building k6 needs Go 1.25 or later (https://go.dev/dl)"
}

# xk6 itself, built from a throwaway module: `go install ...@version` also asks the proxy for the
# module's version list (for deprecation notices), which this proxy refuses.
build_xk6() {
  [[ -x "$xk6" ]] && return
  local tool="$cache/xk6-tool"
  rm -rf "$tool"
  mkdir -p "$tool"
  (
    cd "$tool"
    go mod init phasebench.local/xk6-tool >/dev/null 2>&1
    go get "go.k6.io/xk6/cmd/xk6@$XK6_VERSION"
    go build -o "$xk6.partial" go.k6.io/xk6/cmd/xk6
  ) >"$cache/xk6-build.log" 2>&1 || {
    cat "$cache/xk6-build.log" >&2
    die "could not build xk6 $XK6_VERSION (its output is above)"
  }
  mv "$xk6.partial" "$xk6"
  rm -rf "$tool"
}

build() {
  require_go
  go_env
  if up_to_date; then
    echo "k6 $K6_VERSION: up to date in ${binary#"$root/"}"
    return
  fi
  lock
  if up_to_date; then
    echo "k6 $K6_VERSION: up to date in ${binary#"$root/"} (built meanwhile by another k6.sh)"
    return
  fi
  local started=$SECONDS with="$KAFKA_EXTENSION"
  echo "k6 $K6_VERSION: building with xk6 $XK6_VERSION and ${KAFKA_EXTENSION%%=*} (a few minutes the first time)"
  build_xk6
  # A local replacement is resolved from the repository root, not from where xk6 runs.
  [[ "$with" == *=./* ]] && with="${with%%=*}=$root/${with#*=./}"
  rm -f "$binary.partial"
  # xk6 works in a temporary module of its own; run it from a folder without a go.mod, or it
  # builds that module as an extension under development.
  (cd "$cache" && "$xk6" build "$K6_VERSION" --with "$with" --output "$binary.partial") \
    >"$cache/build.log" 2>&1 || {
    tail -n 40 "$cache/build.log" >&2
    rm -f "$binary.partial"
    die "xk6 could not build k6 $K6_VERSION (the end of ${cache#"$root/"}/build.log is above)"
  }
  # A half-written binary never passes for a built one: rename, then stamp.
  mv "$binary.partial" "$binary"
  wanted_stamp >"$stamp"
  echo "k6 $K6_VERSION: built ${binary#"$root/"} in $((SECONDS - started)) s: $("$binary" version | head -n 1)"
}

path() {
  require_go
  go_env
  echo "$binary"
  up_to_date || {
    echo "k6.sh: ${binary#"$root/"} is not built from the current pins: run 'bash scripts/k6.sh build'" >&2
    exit 3
  }
}

case "${1:-}" in
build) build ;;
path) path ;;
*)
  echo "usage: bash scripts/k6.sh build|path" >&2
  exit 2
  ;;
esac
