#!/bin/sh
# Install everything kvmstatd needs to build, run, test and benchmark, from
# Debian packages only. Idempotent and quiet when all is present; needs
# root (or sudo) only when something is missing. The one place where the
# project's dependencies are listed.
set -eu

# build: compiler, pkg-config and the libraries the daemon links
BUILD="gcc make pkg-config libbpf-dev bpftool clang llvm libmicrohttpd-dev libinih-dev libcap-ng-dev libseccomp-dev zlib1g-dev libgnutls28-dev libcrypt-dev"
# tests: unit tests (cmocka), integration (pytest, the prometheus_client
# parsers, promtool, curl; openssl makes the TLS tests' certificates), linters
# systemd: systemd-socket-activate and systemd-analyze for the unit tests
# the kvmstat CLI driven in tmux, the live page in headless chromium
TEST="systemd libcmocka-dev python3 python3-pytest python3-prometheus-client prometheus curl openssl cppcheck clang-format python3-pyflakes tmux chromium"
# benchmarks (QEMU as a peer to compare against) and fuzzing (clang, libFuzzer);
# the lab (tests/lab/: a guest with nested KVM under QEMU where /dev/kvm is
# missing) also needs debootstrap and mkfs.ext4 -d
BENCH="qemu-system-x86 clang debootstrap e2fsprogs"
# monitoring/: Alertmanager for the alert-delivery tests, YAML for the
# static checks, Node.js and npm for the dashboards' type check (an
# installed node that brings its own npm is kept)
MONITORING="prometheus-alertmanager python3-yaml"
command -v npm >/dev/null 2>&1 || MONITORING="$MONITORING nodejs npm"

missing=""
for p in $BUILD $TEST $BENCH $MONITORING; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi
# the worker's unprivileged user, when we are root and may create it
if [ "$(id -u)" -eq 0 ]; then
	"$(dirname "$0")/create-user.sh"
fi
