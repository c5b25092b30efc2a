# kvmstatd - one Makefile for the daemon, the VMM client, the demo VMM,
# the tests and the benchmark. `make V=1` shows full commands.
#
#   make            build everything into build/
#   make run        install dependencies, build, start kvmstatd + demo VMs
#   make check      install dependencies, build, run every test
#   make bench      start real VMs and print figures (not a test)
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
LIBEXECDIR ?= $(PREFIX)/libexec
INCDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MONITORINGDIR ?= $(PREFIX)/share/kvmstatd/monitoring
DESTDIR ?=

VERSION := 0.1.0
B := build
CC ?= cc
PYTHON := /usr/bin/python3

# The two programs link different libraries: the privileged helper
# (kvmstatd) nothing that parses the network or renders, the worker
# (kvmstatd-worker) no libcap-ng or libbpf. Neither links libsystemd: the
# helper reads the service manager's variables itself (daemon/helper/sdenv.h).
# tests/integration/test_exec_split.py checks what each binary needs.
HELPER_PKGS := inih libcap-ng libseccomp
WORKER_PKGS := libmicrohttpd gnutls libxcrypt zlib libseccomp inih
PKGS := $(sort $(HELPER_PKGS) $(WORKER_PKGS))
# Exit telemetry (bpf/kvmexit.bpf.c): BPF=0 builds a daemon without it, for
# a build host whose kernel has no BTF (/sys/kernel/btf/vmlinux).
BPF ?= 1
ifeq ($(BPF),1)
PKGS += libbpf
HELPER_PKGS += libbpf
endif
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
CLANG ?= clang
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -fno-strict-aliasing -D_GNU_SOURCE \
	-DKVMSTATD_VERSION='"$(VERSION)"' -DKVMSTAT_VERSION='"$(VERSION)"'
CFLAGS += $(EXTRA_CFLAGS)
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(BPF),1)
CFLAGS += -DKVMSTATD_BPF
INC_BPF := -I$(B)/bpf
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
HELPER_LIBS = $(shell pkg-config --libs $(HELPER_PKGS) 2>/dev/null)
WORKER_LIBS = $(shell pkg-config --libs $(WORKER_PKGS) 2>/dev/null)
LDLIBS += -pthread -lm

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

.DELETE_ON_ERROR:
.PHONY: all run check bench bench-bpf bench-http bench-smoke install clean deps unit integration lint sanitize format fuzz \
	layout-check state-check coverage cycles \
	fuzz-replay metrics-doc FORCE monitoring monitoring-check docs-screenshots

# Which process runs a file is the folder it is in (README "Layout"), and
# each folder compiles with only the include paths it may use, so that a
# forbidden dependency fails to build (make layout-check proves it):
#   util/        pure functions for every program, the shim's too
#   client/      the VMM side: the wire format and the client library
#   common/      both daemon processes: config, log, privilege drop, sandbox
#   channel/     the helper <-> worker messages and fd passing
#   helper/      the privileged process: registration, discovery, the worker's life
#   worker/      the unprivileged process: schemas, polling, rings
#   exposition/  the worker's HTTP side: rendering, auth, TLS; no channel
INC_util := -Iutil
INC_client := -Iclient
INC_shim := -Ishim -Iclient -Iutil
INC_common := -Idaemon/common -Iutil
INC_channel := $(INC_common) -Idaemon/channel -Iclient
INC_helper := $(INC_channel) -Idaemon/helper
INC_worker := $(INC_channel) -Idaemon/worker -Idaemon/exposition $(INC_BPF)
INC_exposition := $(INC_common) -Idaemon/worker -Idaemon/exposition
# Everything, for tests and benchmarks that reach into any module.
INC_ALL := $(INC_channel) -Idaemon/helper -Idaemon/worker -Idaemon/exposition $(INC_BPF)
$(B)/daemon/helper/bpfload.o: INC_helper += $(INC_BPF)

DAEMON_DIRS := common channel helper worker exposition
DAEMON_MAINS := daemon/helper/main.c daemon/worker/main.c
DAEMON_SRC := $(filter-out $(DAEMON_MAINS),$(wildcard $(DAEMON_DIRS:%=daemon/%/*.c))) \
	$(wildcard util/*.c)
# The live page's files, compiled into the worker (webassets.h).
WEB_ASSETS := $(wildcard daemon/exposition/web/*)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/%.o) $(B)/gen/webassets.o
# What both programs share, as an archive: each links only what it calls
# (the worker no privdrop, hence no libcap-ng).
SHARED_OBJ := $(filter $(B)/daemon/common/% $(B)/daemon/channel/% $(B)/util/%,$(DAEMON_OBJ))
HELPER_OBJ := $(filter $(B)/daemon/helper/%,$(DAEMON_OBJ))
WORKER_OBJ := $(filter $(B)/daemon/worker/% $(B)/daemon/exposition/% $(B)/gen/%,$(DAEMON_OBJ))
# Where the installed helper finds the worker program (workerexec.h); a build
# tree's helper uses the kvmstatd-worker next to it instead.
WORKER_PATH := $(LIBEXECDIR)/kvmstatd/kvmstatd-worker
DAEMON_HDR := $(wildcard $(DAEMON_DIRS:%=daemon/%/*.h) util/*.h client/*.h shim/*.h)
CLIENT_OBJ := $(B)/client/kvmstat_client.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

SYSTEMD_FILES := $(B)/systemd/kvmstatd.service $(B)/systemd/kvmstatd.tmpfiles

all: $(B)/kvmstatd $(B)/kvmstatd-worker $(B)/kvmstat-demo-vmm $(B)/libkvmstat-client.a $(B)/bench-pread \
	$(B)/bench-static $(B)/bench-debugfs $(B)/bench-render $(B)/bench-history \
	$(B)/capture-stats-layout \
	$(B)/libkvmstat-preload.so $(SYSTEMD_FILES)

# Units with this build's paths (make install PREFIX=... SYSCONFDIR=...).
SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
	-e 's|@USER@|kvmstatd|g'
$(B)/systemd/%: systemd/%.in Makefile
	$(call msg,GEN,$@)
	@mkdir -p $(dir $@)
	$(Q)$(SUBST) $< >$@

# A daemon object: the include paths of its folder (INC_<folder>).
$(B)/daemon/%.o: daemon/%.c $(DAEMON_HDR)
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(INC_$(firstword $(subst /, ,$*))) $(PKG_CFLAGS) -c $< -o $@

$(B)/gen/webassets.c: $(WEB_ASSETS) scripts/embed-assets.py
	$(call msg,GEN,$@)
	@mkdir -p $(dir $@)
	$(Q)$(PYTHON) scripts/embed-assets.py $@ $(WEB_ASSETS)

$(B)/gen/webassets.o: $(B)/gen/webassets.c daemon/exposition/webassets.h
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(INC_exposition) -c $< -o $@

$(B)/util/%.o: util/%.c $(DAEMON_HDR)
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(INC_util) -c $< -o $@

$(B)/client/%.o: client/%.c $(DAEMON_HDR)
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(INC_client) -c $< -o $@

$(B)/demo/%.o: demo/%.c $(DAEMON_HDR)
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(INC_client) -c $< -o $@

# Benchmarks and tools reach into any module.
$(B)/%.o: %.c $(DAEMON_HDR)
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(INC_ALL) $(PKG_CFLAGS) -c $< -o $@

# vmlinux.h from the build host's kernel BTF; CO-RE relocates the object
# to the running kernel's layout at load time, so any BTF kernel will do.
$(B)/bpf/vmlinux.h:
	$(call msg,GEN,$@)
	@mkdir -p $(dir $@)
	@test -r /sys/kernel/btf/vmlinux || { echo "error: /sys/kernel/btf/vmlinux is missing:" \
		"this kernel has no BTF (CONFIG_DEBUG_INFO_BTF), needed to build the exit" \
		"telemetry; build without it with 'make BPF=0'" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

# -g makes the BTF that CO-RE needs, and DWARF that nothing at run time
# reads: `bpftool gen object` keeps the first and drops the second, so the
# skeleton (and the helper, which embeds it) carries ~65 KiB, not ~750.
$(B)/bpf/kvmexit.tmp.bpf.o: bpf/kvmexit.bpf.c daemon/common/bpf_layout.h $(B)/bpf/vmlinux.h
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -I$(B)/bpf -Idaemon/common \
		-c $< -o $@

$(B)/bpf/kvmexit.bpf.o: $(B)/bpf/kvmexit.tmp.bpf.o
	$(call msg,BPFOBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(B)/bpf/kvmexit.skel.h: $(B)/bpf/kvmexit.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name kvmexit > $@

ifeq ($(BPF),1)
$(B)/daemon/helper/bpfload.o: $(B)/bpf/kvmexit.skel.h
endif

# The helper looks for the worker next to itself (the build tree), then at
# ../libexec/kvmstatd/ from its own directory (make install with any PREFIX
# and the default LIBEXECDIR), then at the path compiled in here. An
# install does not rebuild it: machines without a compiler (the lab) install
# the build they were given.
$(B)/daemon/helper/workerexec.o: CFLAGS += -DKVMSTATD_WORKER_PATH='"$(WORKER_PATH)"'

$(B)/libkvmstatd-shared.a: $(SHARED_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# --as-needed: what a binary records as NEEDED is what it calls.
$(B)/kvmstatd: $(B)/daemon/helper/main.o $(HELPER_OBJ) $(B)/libkvmstatd-shared.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -Wl,--as-needed -o $@ $^ $(HELPER_LIBS) $(LDLIBS)

$(B)/kvmstatd-worker: $(B)/daemon/worker/main.o $(WORKER_OBJ) $(B)/libkvmstatd-shared.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -Wl,--as-needed -o $@ $^ $(WORKER_LIBS) $(LDLIBS)

$(B)/libkvmstat-client.a: $(CLIENT_OBJ)
	$(call msg,AR,$@)
	$(Q)ar rcs $@ $^

$(B)/kvmstat-demo-vmm: $(B)/demo/kvmstat-demo-vmm.o $(CLIENT_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench-pread: $(B)/bench/bench-pread.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The exit telemetry's costs (make bench-bpf): the BPF object and the
# worker's own reading code.
$(B)/bench-bpf: $(B)/bench/bench-bpf.o $(DAEMON_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(B)/bench/bench-bpf.o: $(B)/bpf/kvmexit.skel.h

$(B)/bench-static: $(B)/bench/bench-static.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The renderer alone on the captured layouts: the figure to tune it by.
$(B)/bench-render: $(B)/bench/bench-render.o $(B)/bench/captured.o $(DAEMON_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# What [poll] history_s costs: memory, the tick's copy, the API's queries.
$(B)/bench-history: $(B)/bench/bench-history.o $(B)/bench/captured.o $(DAEMON_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(B)/bench-debugfs: $(B)/bench/bench-debugfs.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/capture-stats-layout: $(B)/tools/capture-stats-layout.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The LD_PRELOAD shim for unmodified VMMs: everything hidden but ioctl().
# It sees the client library and util/, nothing of the daemon.
SHIM_OBJ := $(B)/shim/kvmstat_preload.pic.o $(B)/util/qemu_name.pic.o \
	$(B)/util/escape.pic.o $(B)/client/kvmstat_client.pic.o
$(B)/%.pic.o: %.c $(DAEMON_HDR)
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(INC_shim) -fPIC -fvisibility=hidden -c $< -o $@

$(B)/libkvmstat-preload.so: $(SHIM_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -shared -fPIC -Wl,-z,defs -Wl,-z,now -Wl,-z,relro -o $@ $^ -ldl -pthread

$(B)/tests/%: tests/unit/%.c $(DAEMON_OBJ)
	$(call msg,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(INC_ALL) $(PKG_CFLAGS) -Itests/unit -o $@ $^ $(PKG_LIBS) -lcmocka $(LDLIBS)

# The client library under a fake ioctl() interposer, as inside the shim.
$(B)/tests/test_client_ioctl: $(CLIENT_OBJ)

deps:
	$(Q)scripts/install-deps.sh

# Without a usable /dev/kvm, both run inside the lab guest (tests/lab/).
run: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all
	$(Q)tests/lab/demo

unit: $(UNIT_BIN)
	$(Q)rc=0; for t in $(UNIT_BIN); do echo "== $$t"; (cd tests/unit && ../../$$t) || rc=1; done; exit $$rc

integration: all
	$(Q)tests/lab/integration

lint: $(B)/kvmstatd $(B)/kvmstatd-worker
	$(Q)scripts/lint.sh
	$(Q)$(PYTHON) scripts/metrics-doc.py $(B)/kvmstatd --check

# README's metrics reference, from the daemon's HELP table (the worker
# program prints it; kvmstatd --metrics-reference runs that).
metrics-doc: $(B)/kvmstatd $(B)/kvmstatd-worker
	$(Q)$(PYTHON) scripts/metrics-doc.py $(B)/kvmstatd

# README's screenshot of the live page and kvmstat top's capture, from a real
# kvmstatd and demo VMs (in the lab guest without /dev/kvm: minutes). On
# demand, not in make check.
docs-screenshots: all
	$(Q)$(PYTHON) scripts/docs-screenshots.py

# Unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize:
	$(Q)$(MAKE) --no-print-directory B=build/asan WERROR=1 EXTRA_CFLAGS="$(SAN_FLAGS)" unit

# Import cycles between the daemon's files, from their objects' symbols
# (a module calls down, never back up): lists each, fails if there is one.
cycles: $(DAEMON_OBJ) $(B)/daemon/helper/main.o
	$(Q)$(PYTHON) scripts/import-cycles.py $^

# Line coverage of the privileged helper (daemon/helper/) by the unit
# tests: gcc --coverage at -O0 in build/coverage, then gcov per file.
COV_B := build/coverage
coverage:
	@mkdir -p $(COV_B)
	$(Q)find $(COV_B) -name '*.gcda' -delete
	$(Q)$(MAKE) --no-print-directory B=$(COV_B) WERROR=1 EXTRA_CFLAGS="-O0 --coverage" unit \
		$(COV_B)/daemon/helper/main.o \
		>$(COV_B)/unit.log 2>&1 || { tail -n 30 $(COV_B)/unit.log; echo "coverage: unit tests FAILED"; exit 1; }
	$(Q)scripts/coverage.sh $(COV_B) daemon/helper

# Fuzzers (clang + libFuzzer): make fuzz FUZZ_SECONDS=300
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=gnu11 \
	-D_GNU_SOURCE -DKVMSTATD_VERSION='"$(VERSION)"' $(INC_ALL)
SCHEMA_SRC := daemon/worker/schema.c daemon/common/statsid.c daemon/exposition/metric.c \
	daemon/exposition/help.c util/escape.c daemon/worker/ring.c daemon/worker/source.c \
	daemon/worker/snapshot.c daemon/worker/statfilter.c daemon/common/pattern.c daemon/exposition/render.c \
	daemon/exposition/render_page.c daemon/exposition/render_stats.c \
	daemon/exposition/render_schedstat.c \
	daemon/common/buf.c daemon/exposition/selfstats.c daemon/common/reject.c \
	daemon/exposition/render_bpf.c daemon/worker/bpfview.c daemon/exposition/exit_reasons.c \
	daemon/common/reason.c
# One target per tests/fuzz/fuzz_<t>.c: its daemon sources, libraries, libFuzzer options.
FUZZ_TARGETS := schema config regmsg ipc webauth regsock apiquery sdenv
FUZZ_SRC_schema := $(SCHEMA_SRC)
FUZZ_SRC_config := daemon/common/config.c daemon/common/pattern.c daemon/common/reason.c
FUZZ_SRC_regmsg := daemon/helper/regmsg.c util/escape.c daemon/common/reason.c
FUZZ_SRC_ipc := daemon/channel/ipc.c daemon/common/reason.c
FUZZ_SRC_webauth := daemon/exposition/authheader.c
# the helper's request path from recvmsg on, with the VM table (the loop's part in the target)
FUZZ_SRC_regsock := daemon/helper/helper_request.c daemon/channel/fdpass.c daemon/helper/fdcheck.c \
	daemon/helper/regmsg.c daemon/helper/policy.c daemon/common/log.c daemon/common/journal.c \
	daemon/common/logbudget.c daemon/helper/procfs.c daemon/common/statsid.c daemon/common/reject.c \
	util/escape.c daemon/helper/vmtable.c daemon/helper/sysops.c daemon/helper/borrow.c \
	daemon/common/reason.c
FUZZ_SRC_apiquery := $(SCHEMA_SRC) daemon/exposition/api.c daemon/exposition/api_stats.c \
	daemon/exposition/api_exits.c daemon/exposition/api_filter.c daemon/exposition/api_math.c \
	daemon/exposition/json.c
FUZZ_SRC_sdenv := daemon/helper/sdenv.c daemon/common/reason.c
FUZZ_LIBS_config := -linih
FUZZ_OPTS_schema := -max_len=8192
FUZZ_OPTS_regmsg := -max_len=256
FUZZ_OPTS_ipc := -max_len=256
FUZZ_OPTS_webauth := -max_len=1024
# (-print_funcs=0: printing a NEW_FUNC starts llvm-symbolizer, whose pipes
# the target's fd-leak check would take for the helper's)
FUZZ_OPTS_regsock := -max_len=1024 -print_funcs=0
FUZZ_OPTS_apiquery := -max_len=2048
FUZZ_OPTS_sdenv := -max_len=512
FUZZ_DEPS := $(DAEMON_SRC) $(DAEMON_HDR) tests/fuzz/run_corpus.c
FUZZ_RUN := $(FUZZ_TARGETS:%=fuzz-run-%)
FUZZ_SMOKE_SECONDS ?= 10
.PHONY: fuzz-smoke $(FUZZ_RUN)

$(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%): $(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS)
	$(call msg,CLANG,$@)
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC_$*) $(FUZZ_LIBS_$*) -lm -pthread

# New inputs go to $(B)/fuzz/work-<t>, crashes to $(B)/fuzz/<t>-crash-*, output to <t>.log.
$(FUZZ_RUN): fuzz-run-%: $(B)/fuzz/fuzz_%
	@mkdir -p $(B)/fuzz/work-$*
	$(call msg,FUZZ,$*)
	$(Q)$< $(B)/fuzz/work-$* tests/fuzz/corpus/$* -max_total_time=$(FUZZ_SECONDS) \
		$(FUZZ_OPTS_$*) -artifact_prefix=$(B)/fuzz/$*- >$(B)/fuzz/$*.log 2>&1 || \
		{ tail -n 40 $(B)/fuzz/$*.log; echo "fuzz_$*: FAILED (log: $(B)/fuzz/$*.log)"; exit 1; }
	@echo "  fuzz_$*: $$(grep -E '^Done [0-9]+ runs' $(B)/fuzz/$*.log)"

fuzz: $(FUZZ_RUN)

# The bounded run of `make check`: every target FUZZ_SMOKE_SECONDS, two at a time.
fuzz-smoke:
	$(Q)$(MAKE) --no-print-directory -j2 FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) fuzz

# The fuzz corpora replayed under ASan/UBSan with gcc: a regression check.
$(FUZZ_TARGETS:%=$(B)/fuzz/replay_%): $(B)/fuzz/replay_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS)
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SAN_FLAGS) -std=gnu11 -D_GNU_SOURCE -DKVMSTATD_VERSION='"$(VERSION)"' $(INC_ALL) \
		-o $@ tests/fuzz/run_corpus.c $< $(FUZZ_SRC_$*) $(FUZZ_LIBS_$*) -lm -pthread

fuzz-replay: $(FUZZ_TARGETS:%=$(B)/fuzz/replay_%)
	$(Q)for t in $(FUZZ_TARGETS); do $(B)/fuzz/replay_$$t tests/fuzz/corpus/$$t/* || exit 1; done

# The walls between folders (scripts/layout-check.sh): FOLDER:HEADER:yes|no.
LAYOUT_PROBES := \
	helper:render.h:no helper:http.h:no helper:webtls.h:no helper:schema.h:no \
	helper:source.h:no helper:worker.h:no \
	helper:fdpass.h:yes helper:ipc.h:yes helper:config.h:yes helper:kvmstat_proto.h:yes \
	helper:statsid.h:yes helper:escape.h:yes helper:boot.h:yes helper:help.h:no \
	helper:webauth.h:no \
	exposition:fdpass.h:no exposition:ipc.h:no exposition:helper_state.h:no \
	exposition:snapshot.h:yes exposition:render.h:yes exposition:config.h:yes \
	worker:helper_state.h:no worker:fdcheck.h:no worker:ipc.h:yes worker:render.h:yes \
	worker:boot.h:yes worker:workerexec.h:no exposition:boot.h:no \
	channel:render.h:no channel:helper_state.h:no channel:kvmstat_proto.h:yes \
	common:ipc.h:no common:render.h:no common:schema.h:no common:helper_state.h:no \
	common:escape.h:yes \
	client:config.h:no client:log.h:no client:escape.h:no client:kvmstat_proto.h:yes \
	shim:log.h:no shim:fdpass.h:no shim:config.h:no shim:kvmstat_client.h:yes shim:escape.h:yes \
	util:log.h:no util:kvmstat_proto.h:no util:escape.h:yes
LAYOUT_DIRS := util client shim common channel helper worker exposition
layout-check:
	$(Q)env $(foreach d,$(LAYOUT_DIRS),INC_$(d)="$(INC_$(d))") scripts/layout-check.sh \
		"$(CC)" "$(CFLAGS) $(PKG_CFLAGS)" $(LAYOUT_PROBES)

# No hidden state in the worker and its HTTP side (scripts/state-check.sh):
# every mutable object they define is passed in a context instead.
STATE_OBJ := $(filter $(B)/daemon/worker/% $(B)/daemon/exposition/%,$(DAEMON_OBJ)) \
	$(B)/daemon/worker/main.o
state-check: $(STATE_OBJ)
	$(Q)scripts/state-check.sh $(STATE_OBJ)

# monitoring/: regenerate the dashboards and the include profile after
# editing monitoring/tools/generate.py; monitoring-check runs every static
# check of the rules, tests, runbooks and dashboards (see check.py).
monitoring:
	$(Q)$(PYTHON) monitoring/tools/generate.py

monitoring-check: $(B)/kvmstatd
	$(Q)scripts/install-npm-deps.sh
	$(Q)$(PYTHON) monitoring/tools/check.py --kvmstatd $(B)/kvmstatd --tsc --work $(B)/monitoring-check

check: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all unit layout-check state-check cycles
	$(Q)$(MAKE) --no-print-directory sanitize fuzz-replay fuzz-smoke
	$(Q)$(MAKE) --no-print-directory lint
	$(Q)$(MAKE) --no-print-directory monitoring-check
	$(Q)$(MAKE) --no-print-directory WERROR=1 integration
	$(Q)$(MAKE) --no-print-directory bench-smoke

bench: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all
	$(Q)$(PYTHON) bench/bench.py

# HTTP under abuse: a scraper's latency with and without 64 hostile clients.
bench-http: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all
	$(Q)$(PYTHON) bench/bench_http_abuse.py

bench-bpf: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all $(B)/bench-bpf
	$(Q)$(PYTHON) bench/bench_bpf.py

# Every part of the benchmark once at a tiny size, a few seconds: it still works.
BENCH_SMOKE_ENV := BENCH_SWEEP=2x2 BENCH_VCPUS=2 BENCH_REPS=1 BENCH_WARM=1 BENCH_QEMU=1 \
	BENCH_QEMU_SETTLE_S=0 BENCH_INTERVAL_MS=100 BENCH_CPU_SECONDS=1 BENCH_JSON=$(B)/bench-smoke.json
bench-smoke: all
	$(Q)$(BENCH_SMOKE_ENV) timeout 120 $(PYTHON) bench/bench.py >$(B)/bench-smoke.log 2>&1 || \
		{ tail -n 30 $(B)/bench-smoke.log; echo "bench-smoke: FAILED"; exit 1; }
	@echo "  bench-smoke: ok ($(B)/bench-smoke.log)"
	$(Q)BENCH_HTTP_SECONDS=2 BENCH_HTTP_ROUNDS=1 BENCH_HTTP_MAX_REQUESTS=50 timeout 60 \
		$(PYTHON) bench/bench_http_abuse.py >$(B)/bench-http-smoke.log 2>&1 || \
		{ tail -n 30 $(B)/bench-http-smoke.log; echo "bench-http smoke: FAILED"; exit 1; }
	@echo "  bench-http smoke: ok ($(B)/bench-http-smoke.log)"

format:
	$(Q)clang-format -i daemon/*/*.[ch] util/*.[ch] client/*.[ch] shim/*.[ch] demo/*.c tests/unit/*.[ch] bench/*.c \
		bpf/*.bpf.c

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/kvmstatd \
		$(DESTDIR)$(LIBEXECDIR)/kvmstatd \
		$(DESTDIR)$(INCDIR) $(DESTDIR)$(SYSCONFDIR)/kvmstatd $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(B)/kvmstatd $(DESTDIR)$(SBINDIR)/kvmstatd
	install -m 0755 $(B)/kvmstatd-worker $(DESTDIR)$(LIBEXECDIR)/kvmstatd/kvmstatd-worker
	install -m 0755 $(B)/kvmstat-demo-vmm $(DESTDIR)$(BINDIR)/kvmstat-demo-vmm
	install -m 0755 cli/kvmstat $(DESTDIR)$(BINDIR)/kvmstat
	install -m 0644 $(B)/libkvmstat-client.a $(DESTDIR)$(LIBDIR)/libkvmstat-client.a
	install -m 0644 $(B)/libkvmstat-preload.so $(DESTDIR)$(LIBDIR)/kvmstatd/libkvmstat-preload.so
	install -m 0644 client/kvmstat_client.h client/kvmstat_proto.h $(DESTDIR)$(INCDIR)/
	@# an edited configuration is the operator's: never overwrite it
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/kvmstatd/kvmstatd.ini ]; then \
		echo "  kept $(DESTDIR)$(SYSCONFDIR)/kvmstatd/kvmstatd.ini (new one: kvmstatd.ini.dist)"; \
		install -m 0644 config/kvmstatd.ini $(DESTDIR)$(SYSCONFDIR)/kvmstatd/kvmstatd.ini.dist; \
	else install -m 0640 config/kvmstatd.ini $(DESTDIR)$(SYSCONFDIR)/kvmstatd/kvmstatd.ini; fi
	install -m 0644 docs/kvmstatd.8 $(DESTDIR)$(MANDIR)/man8/kvmstatd.8
	install -m 0644 docs/kvmstat.1 $(DESTDIR)$(MANDIR)/man1/kvmstat.1
	install -m 0644 docs/kvmstat-demo-vmm.1 $(DESTDIR)$(MANDIR)/man1/kvmstat-demo-vmm.1
	install -m 0644 docs/kvmstatd.ini.5 $(DESTDIR)$(MANDIR)/man5/kvmstatd.ini.5
	@# made again here: this install's PREFIX may not be the build's
	$(SUBST) systemd/kvmstatd.service.in >$(DESTDIR)$(UNITDIR)/kvmstatd.service
	$(SUBST) systemd/kvmstatd.tmpfiles.in >$(DESTDIR)$(TMPFILESDIR)/kvmstatd.conf
	install -m 0644 systemd/kvmstatd.socket systemd/kvmstatd-register.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 systemd/kvmstatd.sysusers $(DESTDIR)$(SYSUSERSDIR)/kvmstatd.conf
	@# rules, alerts, runbooks, dashboards and the include profile
	install -d $(DESTDIR)$(MONITORINGDIR)/rules $(DESTDIR)$(MONITORINGDIR)/runbooks \
		$(DESTDIR)$(MONITORINGDIR)/dashboards $(DESTDIR)$(MONITORINGDIR)/tests
	install -m 0644 monitoring/rules/*.rules.yml $(DESTDIR)$(MONITORINGDIR)/rules/
	install -m 0644 monitoring/runbooks/*.md $(DESTDIR)$(MONITORINGDIR)/runbooks/
	install -m 0644 monitoring/dashboards/*.json $(DESTDIR)$(MONITORINGDIR)/dashboards/
	install -m 0644 monitoring/tests/rules.test.yml $(DESTDIR)$(MONITORINGDIR)/tests/
	install -m 0644 monitoring/kvmstatd-include.ini monitoring/README.md $(DESTDIR)$(MONITORINGDIR)/
	@# on this host, as root: the user, then the file modes tmpfiles.d asks for
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		scripts/create-user.sh && \
		{ ! command -v systemd-tmpfiles >/dev/null || \
		  systemd-tmpfiles --create $(TMPFILESDIR)/kvmstatd.conf; }; fi

clean:
	rm -rf $(B)

# The kernel series in kernel-patches/: checkpatch, apply to the Debian base,
# build, boot unpatched and patched under QEMU TCG, compare (not in `check`:
# it installs kernel sources and builds kernels; see the README).
.PHONY: kernel-check
kernel-check:
	$(Q)scripts/kernel-check.sh

# The whole daemon on the kvm-stats-observer kernel: the lab image booted
# with that series built in (tests/lab/kernel, cached), an unmodified QEMU
# borrowed (tests/lab/patched-kernel). On demand: a cold kernel build takes
# tens of minutes on two cores.
.PHONY: lab-kernel-check
lab-kernel-check: all
	$(Q)tests/lab/patched-kernel
