#!/bin/sh
# `make run`: kvmstatd in the foreground with config/kvmstatd.ini, and a
# demo VMM with real KVM VMs registered to it. Ctrl-C stops both and
# removes the socket. Without /dev/kvm the daemon runs alone.
set -u
cd "$(dirname "$0")/.."
B=build
VMS="${DEMO_VMS:-3}"
VCPUS="${DEMO_VCPUS:-4}"
if [ "$(id -u)" -ne 0 ]; then
	echo "run-demo: kvmstatd's helper must run as root (it owns /run/kvmstatd)" >&2
	exit 1
fi
"$B/kvmstatd" --config config/kvmstatd.ini &
DAEMON=$!
VMM=""
cleanup() {
	trap - INT TERM EXIT
	[ -n "$VMM" ] && kill -TERM "$VMM" 2>/dev/null
	kill -TERM "$DAEMON" 2>/dev/null
	wait 2>/dev/null
	exit 0
}
trap cleanup INT TERM EXIT
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	"$B/kvmstat-demo-vmm" --vms "$VMS" --vcpus "$VCPUS" --wait-seconds 10 &
	VMM=$!
	echo "run-demo: $VMS VMs x $VCPUS vCPUs registering; try: curl http://localhost:9735/metrics"
else
	echo "run-demo: no usable /dev/kvm: kvmstatd runs without VMs" >&2
fi
echo "run-demo: Ctrl-C stops everything"
wait "$DAEMON"
