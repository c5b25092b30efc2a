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
INCDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=

VERSION := 0.1.0
B := build
CC ?= cc
PYTHON := /usr/bin/python3

PKGS := libmicrohttpd inih libcap-ng zlib
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -fno-strict-aliasing -D_GNU_SOURCE \
	-DKVMSTATD_VERSION='"$(VERSION)"' -DKVMSTAT_VERSION='"$(VERSION)"' -Idaemon -Iclient
CFLAGS += $(EXTRA_CFLAGS)
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS += -pthread -lm

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

.DELETE_ON_ERROR:
.PHONY: all run check bench install clean deps unit integration lint sanitize format fuzz \
	fuzz-replay

DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/%.o)
CLIENT_OBJ := $(B)/client/kvmstat_client.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

all: $(B)/kvmstatd $(B)/kvmstat-demo-vmm $(B)/libkvmstat-client.a $(B)/bench-pread \
	$(B)/capture-stats-layout

$(B)/%.o: %.c $(wildcard daemon/*.h client/*.h)
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(B)/kvmstatd: $(B)/daemon/main.o $(DAEMON_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(B)/libkvmstat-client.a: $(CLIENT_OBJ)
	$(call msg,AR,$@)
	$(Q)ar rcs $@ $^

$(B)/kvmstat-demo-vmm: $(B)/demo/kvmstat-demo-vmm.o $(CLIENT_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench-pread: $(B)/bench/bench-pread.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/capture-stats-layout: $(B)/tools/capture-stats-layout.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(DAEMON_OBJ)
	$(call msg,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit -o $@ $^ $(PKG_LIBS) -lcmocka $(LDLIBS)

deps:
	$(Q)scripts/install-deps.sh

run: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all
	$(Q)scripts/run-demo.sh

unit: $(UNIT_BIN)
	$(Q)rc=0; for t in $(UNIT_BIN); do echo "== $$t"; (cd tests/unit && ../../$$t) || rc=1; done; exit $$rc

integration: all
	$(Q)$(PYTHON) -m pytest -q tests/integration

lint:
	$(Q)scripts/lint.sh

# Unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize:
	$(Q)$(MAKE) --no-print-directory B=build/asan WERROR=1 EXTRA_CFLAGS="$(SAN_FLAGS)" unit

# Fuzzers (clang + libFuzzer): make fuzz FUZZ_SECONDS=300
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=gnu11 \
	-D_GNU_SOURCE -DKVMSTATD_VERSION='"$(VERSION)"' -Idaemon -Iclient
SCHEMA_SRC := daemon/schema.c daemon/metric.c daemon/help.c daemon/escape.c daemon/ring.c \
	daemon/source.c daemon/snapshot.c daemon/render.c daemon/buf.c daemon/selfstats.c
fuzz:
	$(Q)mkdir -p $(B)/fuzz/work-schema $(B)/fuzz/work-config
	$(Q)clang $(FUZZ_CFLAGS) -o $(B)/fuzz/fuzz_schema tests/fuzz/fuzz_schema.c $(SCHEMA_SRC) -lm -pthread
	$(Q)clang $(FUZZ_CFLAGS) -o $(B)/fuzz/fuzz_config tests/fuzz/fuzz_config.c daemon/config.c -linih
	$(Q)$(B)/fuzz/fuzz_schema $(B)/fuzz/work-schema tests/fuzz/corpus/schema \
		-max_total_time=$(FUZZ_SECONDS) -max_len=8192 -artifact_prefix=$(B)/fuzz/schema-
	$(Q)$(B)/fuzz/fuzz_config $(B)/fuzz/work-config tests/fuzz/corpus/config \
		-max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(B)/fuzz/config-

# The fuzz corpora replayed under ASan/UBSan with gcc: a regression check.
fuzz-replay:
	$(Q)mkdir -p $(B)/fuzz
	$(Q)$(CC) $(SAN_FLAGS) -std=gnu11 -D_GNU_SOURCE -DKVMSTATD_VERSION='"$(VERSION)"' -Idaemon \
		-Iclient -o $(B)/fuzz/replay_schema tests/fuzz/run_corpus.c tests/fuzz/fuzz_schema.c \
		$(SCHEMA_SRC) -lm -pthread
	$(Q)$(CC) $(SAN_FLAGS) -std=gnu11 -D_GNU_SOURCE -DKVMSTATD_VERSION='"$(VERSION)"' -Idaemon \
		-Iclient -o $(B)/fuzz/replay_config tests/fuzz/run_corpus.c tests/fuzz/fuzz_config.c \
		daemon/config.c -linih
	$(Q)$(B)/fuzz/replay_schema tests/fuzz/corpus/schema/*
	$(Q)$(B)/fuzz/replay_config tests/fuzz/corpus/config/*

check: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all unit
	$(Q)$(MAKE) --no-print-directory sanitize fuzz-replay
	$(Q)$(MAKE) --no-print-directory lint
	$(Q)$(MAKE) --no-print-directory WERROR=1 integration

bench: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all
	$(Q)$(PYTHON) bench/bench.py

format:
	$(Q)clang-format -i daemon/*.[ch] client/*.[ch] demo/*.c tests/unit/*.[ch] bench/*.c

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(INCDIR) $(DESTDIR)$(SYSCONFDIR)/kvmstatd $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR)
	install -m 0755 $(B)/kvmstatd $(DESTDIR)$(SBINDIR)/kvmstatd
	install -m 0755 $(B)/kvmstat-demo-vmm $(DESTDIR)$(BINDIR)/kvmstat-demo-vmm
	install -m 0644 $(B)/libkvmstat-client.a $(DESTDIR)$(LIBDIR)/libkvmstat-client.a
	install -m 0644 client/kvmstat_client.h client/kvmstat_proto.h $(DESTDIR)$(INCDIR)/
	install -m 0644 config/kvmstatd.ini $(DESTDIR)$(SYSCONFDIR)/kvmstatd/kvmstatd.ini
	install -m 0644 docs/kvmstatd.8 $(DESTDIR)$(MANDIR)/man8/kvmstatd.8
	install -m 0644 systemd/kvmstatd.service $(DESTDIR)$(UNITDIR)/kvmstatd.service
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then scripts/create-user.sh; fi

clean:
	rm -rf $(B)
