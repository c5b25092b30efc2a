#!/bin/sh
# `make run`: kvmstatd in the foreground with config/kvmstatd.ini, a demo
# VMM with real KVM VMs registered to it, and (when installed) an
# unmodified QEMU registered through the preload shim. Ctrl-C stops them
# all and removes the socket. Without /dev/kvm the daemon runs alone.
# DEMO_VMS, DEMO_VCPUS size the demo VMM; DEMO_QEMU=0 leaves QEMU out.
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
QEMU_PID=""
cleanup() {
	trap - INT TERM EXIT
	[ -n "$VMM" ] && kill -TERM "$VMM" 2>/dev/null
	[ -n "$QEMU_PID" ] && kill -TERM "$QEMU_PID" 2>/dev/null
	kill -TERM "$DAEMON" 2>/dev/null
	wait 2>/dev/null
	exit 0
}
trap cleanup INT TERM EXIT
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	# an upper bound: under emulation (the lab) the daemon takes seconds to start
	"$B/kvmstat-demo-vmm" --vms "$VMS" --vcpus "$VCPUS" --wait-seconds 60 &
	VMM=$!
	echo "run-demo: $VMS VMs x $VCPUS vCPUs registering; try: curl http://localhost:9735/metrics"
	QEMU=$(command -v qemu-system-x86_64 || true)
	if [ "${DEMO_QEMU:-1}" != 0 ] && [ -n "$QEMU" ]; then
		# no disk: the firmware runs, finds nothing to boot and waits; a real VM
		# the shim registers at once: wait for the daemon's socket (at most 60 s)
		i=0
		while [ ! -S /run/kvmstatd/register.sock ] && [ $i -lt 600 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		LD_PRELOAD="$PWD/$B/libkvmstat-preload.so" \
			"$QEMU" -accel kvm -smp 2 -m 64 -display none -nodefaults -no-user-config \
			-name guest=qemu-demo -serial none -monitor none &
		QEMU_PID=$!
		echo "run-demo: an unmodified QEMU (vm=\"qemu-demo\") registering through the preload shim"
	fi
else
	echo "run-demo: no usable /dev/kvm: kvmstatd runs without VMs" >&2
fi
echo "run-demo: Ctrl-C stops everything"
wait "$DAEMON"
