#!/bin/bash
# make kernel-check: the kernel series in kernel-patches/, tested for real.
#
# For every series (KERNEL_SERIES: folders, default every kernel-patches/*/
# with a BASE file; all must name the same base):
#   1. installs what it needs (Debian packages, the exact linux-source
#      version named in the series' BASE file);
#   2. runs checkpatch.pl --strict on every patch, NNNN-*.patch but 0000-*
#      (a cover letter); only the missing Signed-off-by is allowed: it is
#      the submitter's to add;
#   3. unpacks the base once (cached under build/kernel/);
#   4. builds a tinyconfig + KVM kernel (KVM, kvm-amd, kvm-intel as modules,
#      so modpost checks the module link) from the unpatched tree, once;
#   5. applies each series alone (git apply --check, then git apply) and
#      builds the same kernel again, one per series;
#   6. boots the kernels under QEMU TCG with an SVM CPU (kvm-amd works
#      there with shadow paging) and a busybox initramfs holding the static
#      test programs of tests/kernel/, and compares the KCHECK lines they
#      print on the serial console with what each kernel must show (the
#      tables below). The unpatched kernel runs every series' tests in one
#      boot; a patched kernel runs those of its series (kcheck.tests= on
#      the kernel command line tells scripts/kernel/init which);
#   7. compile-checks each series with KVM built in (x86_64_defconfig + KVM,
#      AMD and Intel, -Werror), the targets named by `compile-check:` in its
#      BASE.
# Every step has a timeout; any failure stops with a message and exit 1.
#
# Caching: build outputs stay in build/kernel/ (KERNEL_BUILD_DIR). A kernel
# image is rebuilt only when its inputs change: the base tarball, the config
# fragment, the series (for a patched one). KERNEL_CHECK_REBUILD=1 forces
# the builds (incrementally; `rm -rf build/kernel` for a cold run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SERIES_LIST=${KERNEL_SERIES:-$(find kernel-patches -mindepth 2 -maxdepth 2 -name BASE -printf '%h\n' |
	sort)}
KB=${KERNEL_BUILD_DIR:-$ROOT/build/kernel}
JOBS=${KERNEL_JOBS:-2}
BUILD_TIMEOUT=${KERNEL_BUILD_TIMEOUT:-2400}	# seconds, per build step (a cold tinyconfig build took over 1200 s on two busy cores)
BOOT_TIMEOUT=${KERNEL_BOOT_TIMEOUT:-180}	# seconds, per boot
REBUILD=${KERNEL_CHECK_REBUILD:-0}
SRC=$KB/src
T0=$(date +%s)

say() { printf 'kernel-check: %s\n' "$*"; }
fail() {
	printf 'kernel-check: FAILED: %s\n' "$*" >&2
	exit 1
}
elapsed() { echo "$(($(date +%s) - T0))s"; }

# run LOG TIMEOUT CMD...: run a step, its output in LOG; on failure or
# timeout, show the end of LOG and fail.
run() {
	local log=$1 limit=$2 rc=0
	shift 2
	timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$log" >&2
		if [ "$rc" -eq 124 ]; then
			fail "timed out after ${limit}s: $* (log: $log)"
		fi
		fail "exit $rc: $* (log: $log)"
	fi
}

# Exactly one helper may change the tree at a time.
mkdir -p "$KB"
exec 9>"$KB/.lock"
flock -w 600 9 || fail "another kernel-check holds $KB/.lock"

# ---- 1. the base and the tools -------------------------------------------------

# field SERIES KEY: a field of the series' BASE file.
field() { sed -n "s/^$2: *//p" "$1/BASE"; }
# patches_of SERIES: its patches, in order.
patches_of() { find "$1" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort; }
# series_sum SERIES: a checksum over its patches.
series_sum() { patches_of "$1" | tr '\n' '\0' | xargs -0 cat | sha256sum | cut -d' ' -f1; }
# name_of SERIES: the folder's name, as a shell word (kvm-stats-observer ->
# kvm_stats_observer) for the EXPECT_* tables.
name_of() { basename "$1" | tr -- '-' '_'; }

ALL_SERIES=()
for s in $SERIES_LIST; do
	[ -f "$s/BASE" ] || fail "$s/BASE is missing"
	ALL_SERIES+=("$(cd "$s" && pwd)")
done
[ "${#ALL_SERIES[@]}" -gt 0 ] || fail "no series found"
SERIES=${ALL_SERIES[0]}
PKG=$(field "$SERIES" package)
PKG_VERSION=$(field "$SERIES" version)
TARBALL=$(field "$SERIES" tarball)
TARBALL_SHA=$(field "$SERIES" sha256)
KVERSION=$(field "$SERIES" kernelversion)
if [ -z "$PKG" ] || [ -z "$PKG_VERSION" ] || [ -z "$TARBALL" ] || [ -z "$TARBALL_SHA" ]; then
	fail "$SERIES/BASE lacks package, version, tarball or sha256"
fi
for s in "${ALL_SERIES[@]}"; do
	# One source tree serves every series: they must share the base.
	[ "$(field "$s" sha256)" = "$TARBALL_SHA" ] ||
		fail "$s/BASE names another base than $SERIES/BASE"
	[ -n "$(patches_of "$s")" ] || fail "no patches in $s"
done

TOOLS="gcc make perl bc flex bison cpio xz-utils busybox-static libelf-dev libssl-dev kmod
qemu-system-x86 git util-linux"
missing=""
for p in $TOOLS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
have=$(dpkg-query -W -f='${Status} ${Version}' "$PKG" 2>/dev/null || true)
[ "$have" = "install ok installed $PKG_VERSION" ] || missing="$missing $PKG=$PKG_VERSION"
if [ -n "$missing" ]; then
	say "installing:$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	run "$KB/apt.log" 600 $SUDO apt-get update -q
	# shellcheck disable=SC2086
	run "$KB/apt.log" 900 $SUDO apt-get install -y -q --no-install-recommends --allow-downgrades \
		$missing
fi
[ -f "$TARBALL" ] || fail "$TARBALL is missing after installing $PKG"
echo "$TARBALL_SHA  $TARBALL" | sha256sum --quiet -c - ||
	fail "$TARBALL is not the tarball named in $SERIES/BASE"
say "base: $PKG $PKG_VERSION ($(elapsed))"

# ---- 2. the source tree --------------------------------------------------------

# git apply, outside of this repository (build/ is inside its work tree).
gapply() { (cd "$SRC" && GIT_CEILING_DIRECTORIES=$KB git apply "$@"); }

# The series applied to $SRC now, as copies: $KB/applied/NNNN-*.patch.
make_pristine() {
	local p
	if [ -d "$KB/applied" ]; then
		for p in $(find "$KB/applied" -name '*.patch' | sort -r); do
			gapply -R "$p" 2>>"$KB/apply.log" || {
				say "cannot unapply $(basename "$p"): unpacking again"
				rm -rf "$SRC" "$KB/applied"
				return 0
			}
		done
		rm -rf "$KB/applied"
	fi
}

unpack() {
	local t
	t=$(date +%s)
	rm -rf "$SRC" "$KB/src.new" "$KB/applied"
	mkdir -p "$KB/src.new"
	run "$KB/unpack.log" 600 tar -C "$KB/src.new" --strip-components=1 -xf "$TARBALL"
	echo "$TARBALL_SHA" >"$KB/src.new/.kcheck-base"
	mv "$KB/src.new" "$SRC"
	say "unpacked $TARBALL in $(($(date +%s) - t))s"
}

if [ "$(cat "$SRC/.kcheck-base" 2>/dev/null)" != "$TARBALL_SHA" ]; then
	unpack
fi
make_pristine
[ -d "$SRC" ] || unpack
have=$(make -s -C "$SRC" kernelversion 2>/dev/null)
[ -z "$KVERSION" ] || [ "$have" = "$KVERSION" ] ||
	fail "the tree is $have, $SERIES/BASE says $KVERSION"

# ---- 3. checkpatch -------------------------------------------------------------

for p in $(for s in "${ALL_SERIES[@]}"; do patches_of "$s"; done); do
	out=$(cd "$SRC" && timeout 120 ./scripts/checkpatch.pl --strict --ignore MISSING_SIGN_OFF \
		--summary-file "$p" 2>&1) || {
		echo "$out" >&2
		fail "checkpatch.pl --strict: $p"
	}
	case "$out" in
	*"total: 0 errors, 0 warnings, 0 checks, "*) ;;
	*) echo "$out" >&2; fail "checkpatch.pl --strict: unexpected output for $p" ;;
	esac
	out=$(printf '%s\n' "$out" | sed -n 's/.*total: //p')
	say "checkpatch --strict: $(basename "$(dirname "$p")")/$(basename "$p"): $out"
done

# ---- 4./5. the test kernels ----------------------------------------------------

TINY_FRAGMENT=$ROOT/scripts/kernel/tiny-kvm.config
DEF_FRAGMENT=$ROOT/scripts/kernel/defconfig-kvm.config
TINY_SUM=$(sha256sum <"$TINY_FRAGMENT" | cut -d' ' -f1)
DEF_SUM=$(sha256sum <"$DEF_FRAGMENT" | cut -d' ' -f1)

# apply_series SERIES: onto the pristine tree.
apply_series() {
	local p patches
	mapfile -t patches < <(patches_of "$1")
	for p in "${patches[@]}"; do
		gapply --check "$p" 2>"$KB/apply.log" || {
			cat "$KB/apply.log" >&2
			fail "git apply --check: $p does not apply to $PKG $PKG_VERSION"
		}
		gapply "$p" 2>"$KB/apply.log" || {
			cat "$KB/apply.log" >&2
			fail "git apply: $p"
		}
		mkdir -p "$KB/applied"
		cp "$p" "$KB/applied/"
	done
	say "$(basename "$1"): applied ${#patches[@]} patches with git apply --check, git apply"
}

# config OUT BASE_TARGET FRAGMENT: (re)configure when the fragment changed.
configure() {
	local out=$1 target=$2 fragment=$3 sum
	sum=$(sha256sum <"$fragment" | cut -d' ' -f1)
	if [ ! -f "$out/.config" ] || [ "$(cat "$out/.kcheck-fragment" 2>/dev/null)" != "$sum" ]; then
		mkdir -p "$out"
		run "$out.config.log" 300 make -C "$SRC" O="$out" "$target"
		run "$out.config.log" 300 "$SRC/scripts/kconfig/merge_config.sh" -m -O "$out" \
			"$out/.config" "$fragment"
		run "$out.config.log" 300 make -C "$SRC" O="$out" olddefconfig
		# every option of the fragment must have survived olddefconfig
		local line
		while IFS= read -r line; do
			case "$line" in
			CONFIG_*=*) grep -qx "$line" "$out/.config" ||
				fail "$fragment: $line did not take (see $out/.config)" ;;
			"# CONFIG_"*" is not set")
				line=${line#\# }
				! grep -q "^${line% is not set}=" "$out/.config" ||
					fail "$fragment: ${line% is not set} is still set (see $out/.config)" ;;
			esac
		done <"$fragment"
		echo "$sum" >"$out/.kcheck-fragment"
	fi
}

# build_tiny NAME STAMP: the tinyconfig kernel and its modules into $KB/NAME.
build_tiny() {
	local name=$1 stamp=$2 t
	if [ "$REBUILD" != 1 ] && [ -f "$KB/$name/bzImage" ] &&
		[ "$(cat "$KB/$name/stamp" 2>/dev/null)" = "$stamp" ]; then
		say "$name kernel: up to date (cached in $KB/$name)"
		return
	fi
	configure "$KB/out-tiny" tinyconfig "$TINY_FRAGMENT"
	t=$(date +%s)
	say "building the $name kernel (tinyconfig + KVM modules, make -j$JOBS)"
	run "$KB/$name.build.log" "$BUILD_TIMEOUT" make -C "$SRC" O="$KB/out-tiny" -j"$JOBS" \
		bzImage modules
	rm -rf "${KB:?}/$name"
	mkdir -p "$KB/$name"
	run "$KB/$name.install.log" 300 make -C "$SRC" O="$KB/out-tiny" modules_install \
		INSTALL_MOD_PATH="$KB/$name/root" INSTALL_MOD_STRIP=1
	cp "$KB/out-tiny/arch/x86/boot/bzImage" "$KB/$name/bzImage"
	echo "$stamp" >"$KB/$name/stamp"
	say "$name kernel built in $(($(date +%s) - t))s"
}

UNPATCHED_STAMP="$TARBALL_SHA $TINY_SUM unpatched"

# The tree is pristine here (make_pristine above).
build_tiny unpatched "$UNPATCHED_STAMP"

# compile_check SERIES: KVM built in, defconfig, on the patched tree.
compile_check() {
	local s=$1 name stamp targets t
	name=$(basename "$s")
	targets=$(field "$s" compile-check)
	stamp="$TARBALL_SHA $DEF_SUM $(series_sum "$s") $targets"
	if [ "$REBUILD" != 1 ] && [ "$(cat "$KB/stamp-defconfig-$name" 2>/dev/null)" = "$stamp" ]; then
		say "$name: compile check (x86_64_defconfig, KVM built in): up to date"
		return
	fi
	configure "$KB/out-def" x86_64_defconfig "$DEF_FRAGMENT"
	t=$(date +%s)
	say "$name: compile check: x86_64_defconfig + KVM=y, KVM_AMD=y, KVM_INTEL=y, -Werror:" \
		"${targets:-arch/x86/kvm/}"
	# shellcheck disable=SC2086 # targets: a list of make targets
	run "$KB/defconfig.build.log" "$BUILD_TIMEOUT" make -C "$SRC" O="$KB/out-def" -j"$JOBS" \
		KCFLAGS=-Werror ${targets:-arch/x86/kvm/}
	echo "$stamp" >"$KB/stamp-defconfig-$name"
	say "$name: compile check passed in $(($(date +%s) - t))s"
}

# Each series alone on the pristine tree: every run checks that it applies.
for s in "${ALL_SERIES[@]}"; do
	make_pristine
	apply_series "$s"
	build_tiny "$(basename "$s")" "$TARBALL_SHA $TINY_SUM $(series_sum "$s")"
done

# ---- 6. boot and compare -------------------------------------------------------

mkdir -p "$KB/initramfs"
run "$KB/initramfs/gcc.log" 120 gcc -static -O2 -Wall -Wextra -Werror -o \
	"$KB/initramfs/kvm-stats-observer" tests/kernel/kvm-stats-observer.c -pthread
# kvmstatd's own side: the helper's daemon/helper/borrow.c against the same kernel
run "$KB/initramfs/gcc.log" 120 gcc -static -O2 -Wall -Wextra -Werror -Idaemon/helper -o \
	"$KB/initramfs/kvmstatd-borrow" tests/kernel/kvmstatd-borrow.c daemon/helper/borrow.c \
	daemon/helper/borrow_probe.c
run "$KB/initramfs/gcc.log" 120 gcc -static -O2 -Wall -Wextra -Werror -o \
	"$KB/initramfs/guest-callchains" tests/kernel/guest-callchains.c -pthread
BUSYBOX=/bin/busybox	# from busybox-static
# The guest gets the host's TSC under TCG: tell it the frequency rather than
# let it calibrate against the PIT, which fails on a busy host.
run "$KB/initramfs/gcc.log" 120 gcc -O2 -Wall -Wextra -Werror -o "$KB/initramfs/tsc-khz" \
	tests/kernel/tsc-khz.c
TSC_KHZ=$("$KB/initramfs/tsc-khz") || fail "cannot measure the TSC frequency"

# initramfs NAME: a cpio for the kernel in $KB/NAME, made by the kernel's
# own gen_init_cpio (no root needed for /dev/console).
initramfs() {
	local name=$1 root=$KB/$1/root list=$KB/$1/initramfs.list a
	{
		echo "dir /bin 755 0 0"
		echo "dir /proc 755 0 0"
		echo "dir /sys 755 0 0"
		echo "dir /dev 755 0 0"
		echo "nod /dev/console 600 0 0 c 5 1"
		echo "file /bin/busybox $BUSYBOX 755 0 0"
		for a in sh mount modprobe reboot uname; do echo "slink /bin/$a busybox 777 0 0"; done
		echo "file /init $ROOT/scripts/kernel/init 755 0 0"
		echo "file /bin/kvm-stats-observer $KB/initramfs/kvm-stats-observer 755 0 0"
		echo "file /bin/kvmstatd-borrow $KB/initramfs/kvmstatd-borrow 755 0 0"
		echo "file /bin/guest-callchains $KB/initramfs/guest-callchains 755 0 0"
		(cd "$root" && find lib -type d | sort | sed 's|.*|dir /& 755 0 0|')
		(cd "$root" && find lib -type f | sort | sed "s|.*|file /& $root/& 644 0 0|")
	} >"$list"
	"$KB/out-tiny/usr/gen_init_cpio" "$list" >"$KB/$name/initramfs.cpio" ||
		fail "gen_init_cpio for $name"
}

# Common to both kernels: the VMM side works, other ioctls stay EIO, and a
# VM whose VMM executed another program or exited has no owner to check.
COMMON="owner_guest_halted=yes
owner_vcpu_exits_nonzero=yes
observer_other_ioctls=EIO
nobody_other_ioctls=EIO
nobody_reads_passed_stats_fd=yes
owner_vcpu_in_run=yes
sameuid_after_exec_vm_stats=EIO
after_exit_vm_stats=EIO
kvmstatd_borrowed_fds_kept=no"
# Unpatched: a borrowed fd answers EIO, a running vCPU blocks even its VMM.
# shellcheck disable=SC2034 # read through ${!expect}
EXPECT_unpatched_kvm_stats_observer="$COMMON
observer_vm_stats=EIO
observer_vcpu_stats=EIO
nobody_vm_stats=EIO
nobody_vcpu_stats=EIO
owner_running_vcpu_stats=blocked
observer_running_vcpu_stats=EIO
sameuid_vm_stats=EIO
sameuid_nondumpable_vm_stats=EIO
kvmstatd_probe=unsupported
kvmstatd_borrow_vm=EIO
kvmstatd_borrow_vcpu=EIO"
# Patched: the observer reads what the VMM reads, nobody gets EACCES, and a
# running vCPU's stats fd arrives within the test's bound (2 s; it takes
# about 0 ms, and without the series the call never returns). Without
# capabilities, the same uid may read a dumpable VMM's stats, not a
# non-dumpable one's: the ptrace rules, as for /proc/<pid>/ files.
# shellcheck disable=SC2034 # read through ${!expect}
EXPECT_patched_kvm_stats_observer="$COMMON
observer_vm_stats=ok
observer_vcpu_stats=ok
observer_vm_stats_rdonly=yes
observer_vm_stats_same=yes
observer_vcpu_stats_same=yes
nobody_vm_stats=EACCES
nobody_vcpu_stats=EACCES
owner_running_vcpu_stats=ok
observer_running_vcpu_stats=ok
observer_running_vcpu_layout_same=yes
observer_running_vcpu_exits_moving=yes
sameuid_vm_stats=ok
sameuid_nondumpable_vm_stats=EACCES
kvmstatd_probe=supported
kvmstatd_borrow_vm=ok
kvmstatd_borrow_vm_id=vmm
kvmstatd_borrow_vcpu=ok
kvmstatd_borrow_vcpu_id=vmm"

# guest-callchains (tests/kernel/guest-callchains.c): per scenario, the
# most common callchain of the guest samples ("GK" PERF_CONTEXT_GUEST_KERNEL,
# "K"/"U" the host's markers, "ip" the sample's IP, then return addresses
# by the function they return into), shared by at least 90 % of them; the
# guest keeps running undisturbed, and the walk sets no accessed bit.
# gc_expect SCENARIO=CHAIN...
gc_expect() {
	local pair
	for pair; do
		printf '%s\n' "${pair%%=*}_guest_samples=yes" "${pair%%=*}_chain=${pair#*=}" \
			"${pair%%=*}_chain_share=ge90" "${pair%%=*}_ip_in_loop=yes" \
			"${pair%%=*}_guest_undisturbed=yes"
	done
	echo "walk_ptes_accessed=no"
}
# Unpatched: a guest sample's callchain has the host's markers and no frame.
# shellcheck disable=SC2034 # read through ${!expect}
EXPECT_unpatched_guest_callchains=$(gc_expect good64=K,U good32=K,U cycle=K,U unmapped=K,U \
	noslot=K,U garbage=K,U)
# Patched: the guest marker, the IP, then main <- a <- b <- c's callers in
# 64-bit and 32-bit mode; hostile chains end where they stop being sane:
# after one turn of the cycle, before the unmapped or memslot-less record,
# at once for a non-canonical misaligned frame pointer.
# shellcheck disable=SC2034 # read through ${!expect}
EXPECT_patched_guest_callchains=$(gc_expect good64=GK,ip,b,a,main good32=GK,ip,b32,a32,main32 \
	cycle=GK,ip,r1,r2 unmapped=GK,ip,r3 noslot=GK,ip,r4 garbage=GK,ip)

# boot NAME TESTS EXPECTED: boot the kernel in $KB/NAME, run TESTS (programs
# of the initramfs) and compare their KCHECK lines with EXPECTED.
boot() {
	local name=$1 tests=$2 expected=$3 log=$KB/$1/serial.log got rc=0 t bad
	initramfs "$name"
	rm -f "$log"
	t=$(date +%s)
	timeout --kill-after=5 "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu qemu64,+svm \
		-m 256 -smp 1 -nodefaults -no-reboot -display none -monitor none \
		-serial "file:$log" -kernel "$KB/$name/bzImage" -initrd "$KB/$name/initramfs.cpio" \
		-append "console=ttyS0 loglevel=5 panic=-1 tsc_early_khz=$TSC_KHZ kcheck.tests=$tests" \
		>"$KB/$name/qemu.log" 2>&1 || rc=$?
	[ -f "$log" ] || fail "$name: QEMU wrote no console log (see $KB/$name/qemu.log)"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		tail -n 30 "$log" >&2
		fail "$name: the guest did not finish within ${BOOT_TIMEOUT}s (log: $log)"
	fi
	[ "$rc" -eq 0 ] || fail "$name: QEMU exit $rc (see $KB/$name/qemu.log)"
	tr -d '\r' <"$log" >"$log.txt"
	say "$name kernel: booted and tested in $(($(date +%s) - t))s, console: $log"
	sed -n 's/^KINFO /    /p' "$log.txt"
	bad=$(grep -E '^KCHECK-FATAL|(WARNING|BUG|Oops|Kernel panic)[: ]|Call Trace' "$log.txt" || true)
	[ -z "$bad" ] || {
		echo "$bad" >&2
		fail "$name: the guest reported a failure (log: $log)"
	}
	grep -qx 'KCHECK-DONE' "$log.txt" || {
		tail -n 30 "$log.txt" >&2
		fail "$name: the test did not finish (log: $log)"
	}
	grep -qx 'KCHECK-EXIT 0' "$log.txt" || fail "$name: the test program failed (log: $log)"
	got=$(sed -n 's/^KCHECK \([a-z0-9_]*=.*\)$/\1/p' "$log.txt" | sort)
	bad=$(diff <(printf '%s\n' "$expected" | sed '/^$/d' | sort) <(printf '%s\n' "$got") |
		sed -n 's/^< /    expected: /p; s/^> /    observed: /p' || true)
	if [ -n "$bad" ]; then
		echo "$bad" >&2
		fail "$name: the markers differ from what this kernel must show (log: $log)"
	fi
	printf '%s\n' "$got" | sed 's/^/    ok  /'
}

# The unpatched kernel runs every series' tests at once; each patched one
# runs its own.
tests=""
expected=""
for s in "${ALL_SERIES[@]}"; do
	v=EXPECT_unpatched_$(name_of "$s")
	[ -n "${!v-}" ] || fail "$0 has no $v"
	[ -n "$(field "$s" tests)" ] || fail "$s/BASE names no tests"
	tests="$tests${tests:+,}$(field "$s" tests | tr ' ' ',')"
	expected="$expected${!v}"$'\n'
done
boot unpatched "$tests" "$expected"
for s in "${ALL_SERIES[@]}"; do
	v=EXPECT_patched_$(name_of "$s")
	[ -n "${!v-}" ] || fail "$0 has no $v"
	boot "$(basename "$s")" "$(field "$s" tests | tr ' ' ',')" "${!v}"
done

# ---- 7. compile check of each series, KVM built in (after the boots: they
# tell more, sooner) ------------------------------------------------------

for s in "${ALL_SERIES[@]}"; do
	make_pristine
	apply_series "$s"
	compile_check "$s"
done
say "PASSED: ${#ALL_SERIES[@]} series ($(for s in "${ALL_SERIES[@]}"; do basename "$s"; done |
	paste -sd' ')) on $PKG $PKG_VERSION ($(elapsed))"
