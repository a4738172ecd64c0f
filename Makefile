# SPDX-License-Identifier: LGPL-2.1-or-later
#
# rcupool: plain GNU make.  Everything is built under $(B) (default build/).
# Sanitizer variants are the same rules run again with B=build/asan or
# B=build/tsan and SANITIZE set; see the check target.

# A bare `make` builds (the fuzz rule comes first in the file, and ran the
# fuzzers, adding their finds to fuzz/corpus).
.DEFAULT_GOAL := all

VERSION   := 0.1.0
SOVERSION := 0

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib/$(shell $(CC) -dumpmachine 2>/dev/null)
INCLUDEDIR ?= $(PREFIX)/include
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
MANDIR     ?= $(PREFIX)/share/man
# Units go where this system's systemd looks (systemd.pc: /lib/systemd/system
# on Debian 12) for a system install (PREFIX=/usr), else under PREFIX.
SYSTEMD_UNITDIR := $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),$(or $(SYSTEMD_UNITDIR),/lib/systemd/system),$(PREFIX)/lib/systemd/system)

B        ?= build
SANITIZE ?=

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
CPPFLAGS_ALL := -D_GNU_SOURCE -DRCUPOOL_VERSION=\"$(VERSION)\" \
	-DRCUPOOL_SYSCONFDIR=\"$(SYSCONFDIR)\" -Iinclude -Iproto -Ilib
CFLAGS_ALL   := -std=gnu11 -fPIC -pthread -MMD -MP $(WARN) $(CFLAGS)

ifneq ($(SANITIZE),)
CFLAGS_ALL  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS_SAN := -fsanitize=$(SANITIZE)
endif

# Quiet by default, as the kernel does; V=1 shows every command.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-7s %s\n' $(1) $(2)
endif

PKG_CONFIG ?= pkg-config
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

LIB_PKGS    := liburcu-memb libnl-genl-3.0 libnl-3.0
DAEMON_PKGS := $(LIB_PKGS) libsystemd inih
CLI_PKGS    := $(LIB_PKGS) inih
TEST_PKGS   := $(DAEMON_PKGS) liburcu-qsbr liburcu-mb liburcu-signal liburcu-bp liburcu cmocka

LDLIBS_LIB    := $(call pc_libs,$(LIB_PKGS)) -pthread
LDLIBS_DAEMON := $(call pc_libs,$(DAEMON_PKGS)) -pthread
LDLIBS_CLI    := $(call pc_libs,$(CLI_PKGS)) -pthread
LDLIBS_TEST   := $(call pc_libs,$(TEST_PKGS)) -pthread -lm

# Every module of a part: lib/*.c (the borrower) and proto/*.c (what crosses
# the socket, linked by the daemon and the CLI too) are the library;
# daemon/*.c (the lender) and cli/*.c are their programs, main.c holding
# main() so tests can link the rest.
LIB_SRC     := $(sort $(wildcard lib/*.c proto/*.c))
DAEMON_SRC  := $(filter-out daemon/main.c,$(sort $(wildcard daemon/*.c)))
CLI_SRC     := $(filter-out cli/main.c,$(sort $(wildcard cli/*.c)))
TESTLIB_SRC := $(sort $(wildcard tests/lib/*.c))
TEST_SRC    := $(sort $(wildcard tests/test_*.c))
BENCH_SRC   := $(sort $(wildcard bench/bench_*.c))

obj = $(patsubst %.c,$(B)/%.o,$(1))

LIB_OBJ     := $(call obj,$(LIB_SRC))
DAEMON_OBJ  := $(call obj,$(DAEMON_SRC))
CLI_OBJ     := $(call obj,$(CLI_SRC))
TESTLIB_OBJ := $(call obj,$(TESTLIB_SRC))
TESTS       := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
BENCHES     := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
TEST_NAMES  := $(patsubst tests/%.c,%,$(TEST_SRC))
# End-to-end tests written in shell (tests/test_*.sh), run once on the
# plain build: they drive the programs as a user does.
SHELL_TESTS := $(patsubst tests/%.sh,%,$(sort $(wildcard tests/test_*.sh)))

# Tests that never touch liburcu, so ThreadSanitizer sees every access.
TSAN_TESTS  := test_stack test_pcpu test_stress test_seg
# Tests too slow or meaningless under a sanitizer (none yet).
ASAN_SKIP   :=

# Generated from *.in with the install paths (see below).
UNITS := $(B)/units/rcupoold.service $(B)/units/rcupoold.socket
MANS  := $(B)/man/rcupoold.8 $(B)/man/rcupoolctl.8 $(B)/man/rcupoold.conf.5
GENERATED := $(UNITS) $(B)/units/rcupool.tmpfiles $(MANS)

# `make fuzz`: each harness under libFuzzer for FUZZ_SECONDS, its corpus
# in fuzz/corpus/NAME (new finds are added there).
FUZZ_SECONDS ?= 60
FUZZ_B := build/fuzzer
fuzz:
	@$(MAKE) --no-print-directory B=$(FUZZ_B) CC=clang SANITIZE=address,undefined \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" \
		$(patsubst %,$(FUZZ_B)/fuzz/run_%,$(FUZZ_NAMES))
	@for n in $(FUZZ_NAMES); do \
		echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
		$(FUZZ_B)/fuzz/run_$$n -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 fuzz/corpus/$$n 2>&1 | \
			grep -E 'stat::number_of_executed_units|Done|ERROR|SUMMARY|crash' ; \
	done

$(B)/fuzz/run_%: fuzz/fuzz_%.c $(B)/libdaemon.a $(B)/librcupool.a
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)
	$(Q)$(CC) $(CPPFLAGS_ALL) -Itests/lib -Idaemon -DFUZZ_MAIN=fuzz_$* \
		$(CFLAGS_ALL) $(call pc_cflags,$(TEST_PKGS)) -fsanitize=fuzzer \
		$(LDFLAGS_SAN) -o $@ $< $(B)/libdaemon.a $(B)/librcupool.a $(LDLIBS_TEST)

SONAME  := librcupool.so.$(SOVERSION)
SOFILE  := librcupool.so.$(VERSION)

.PHONY: all lib daemon cli tests benches check check-all check-tsan run soak fuzz \
	bench deps deb install uninstall clean format

all: lib daemon cli $(B)/rcupool.pc $(GENERATED)

lib: $(B)/librcupool.a $(B)/$(SOFILE)
daemon: $(B)/rcupoold
cli: $(B)/rcupoolctl
tests: $(TESTS) $(B)/rcupoold $(B)/rcupoolctl $(GENERATED)
benches: $(BENCHES)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(EXTRA_INC) $(CPPFLAGS) $(CFLAGS_ALL) \
		$(call pc_cflags,$(TEST_PKGS)) -c -o $@ $<

# The CLI shares the daemon's drop-in editor (daemon/dropin.h).
$(B)/cli/%.o: EXTRA_INC := -Idaemon

# Tests and benchmarks see the daemon's, the CLI's and the test helpers' headers.
$(B)/tests/%.o $(B)/bench/%.o $(B)/fuzz/%.o: EXTRA_INC := -Itests/lib -Idaemon -Icli

# Fuzz harnesses (fuzz/): replayed over their corpora by test_fuzz_replay;
# `make fuzz FUZZ_SECONDS=...` runs them under libFuzzer (clang).
FUZZ_NAMES := request reply lease conf
FUZZ_OBJ   := $(patsubst %,$(B)/fuzz/fuzz_%.o,$(FUZZ_NAMES))
$(B)/tests/test_fuzz_replay: $(B)/tests/test_fuzz_replay.o $(FUZZ_OBJ) \
		$(B)/libtest.a $(B)/libdaemon.a $(B)/librcupool.a
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_TEST)

$(B)/librcupool.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(B)/$(SOFILE): $(LIB_OBJ) lib/librcupool.sym
	$(call say,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/librcupool.sym \
		-Wl,--no-undefined $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS_LIB)
	$(Q)ln -sf $(SOFILE) $(B)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(B)/librcupool.so

$(B)/libdaemon.a: $(DAEMON_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(B)/libcli.a: $(CLI_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(B)/libtest.a: $(TESTLIB_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(B)/rcupoold: $(B)/daemon/main.o $(B)/libdaemon.a $(B)/librcupool.a
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_DAEMON)

# rcupoolctl edits its drop-in with the daemon's drop-in editor (inih).
$(B)/rcupoolctl: $(B)/cli/main.o $(B)/libcli.a $(B)/daemon/dropin.o $(B)/librcupool.a
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_CLI)

$(B)/tests/%: $(B)/tests/%.o $(B)/libtest.a $(B)/libdaemon.a $(B)/libcli.a \
		$(B)/librcupool.a
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_TEST)

$(B)/bench/%: $(B)/bench/%.o $(B)/librcupool.a
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_TEST)

# The directories compiled into the programs (SYSCONFDIR) and written into
# rcupool.pc and the units: $(B)/dirs holds the values used and is rewritten
# only when they differ, so `make install PREFIX=/usr` after a plain `make`
# rebuilds what names them, and nothing else.
DIRS := PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) \
	SYSCONFDIR=$(SYSCONFDIR) SBINDIR=$(SBINDIR) BINDIR=$(BINDIR) \
	UNITDIR=$(UNITDIR)

$(B)/dirs: FORCE
	@mkdir -p $(@D)
	@echo '$(DIRS)' | cmp -s - $@ 2>/dev/null || echo '$(DIRS)' > $@

FORCE:

# Every object of the daemon and the CLI may name them (CONF_DEFAULT_PATH).
$(DAEMON_OBJ) $(B)/daemon/main.o $(CLI_OBJ) $(B)/cli/main.o: $(B)/dirs

$(B)/rcupool.pc: rcupool.pc.in Makefile $(B)/dirs
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    $< > $@

# systemd units, the tmpfiles snippet and the man pages name the installed
# binaries and the configuration directory: generated like rcupool.pc, so
# that what they say is what the programs read.

$(B)/units/% $(B)/man/%: SUBST = -e 's|@SBINDIR@|$(SBINDIR)|g' \
	-e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@UNITDIR@|$(UNITDIR)|g'

$(B)/units/%: units/%.in $(B)/dirs Makefile
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)sed $(SUBST) $< > $@

$(B)/man/%: man/%.in $(B)/dirs Makefile
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)sed $(SUBST) $< > $@

# --- the two commands of the README -----------------------------------------

deps:
	@scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory check-all

# One run, one summary: plain build, then ASan+UBSan, then TSan on the tests
# that do not involve liburcu.
check-all:
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory B=build/asan SANITIZE=address,undefined tests
	@$(MAKE) --no-print-directory B=build/tsan SANITIZE=thread \
		$(addprefix build/tsan/tests/,$(TSAN_TESTS))
	@scripts/run-tests.sh \
		--group plain build $(TEST_NAMES) $(SHELL_TESTS) \
		--group asan build/asan $(filter-out $(ASAN_SKIP),$(TEST_NAMES)) \
		--group tsan build/tsan $(TSAN_TESTS)

# The soak of tests/test_soak.c for as long as asked: make soak DURATION=600
DURATION ?= 300
# `make soak DURATION=600`: the lender's books under raw lend_daemon clients,
# then librcupool clients (test_borrowers), each for DURATION seconds.
soak:
	@$(MAKE) --no-print-directory tests
	SOAK_SECONDS=$(DURATION) RCUPOOL_BUILD=$(B) $(B)/tests/test_soak
	RCUPOOL_SOAK_SECONDS=$(DURATION) RCUPOOL_BUILD=$(B) $(B)/tests/test_borrowers --soak

run: deps
	@$(MAKE) --no-print-directory all
	@echo "rcupoold: starting in the foreground with its embedded defaults (Ctrl-C stops it)"
	@exec $(B)/rcupoold $(RUN_ARGS)

# Unsigned binary packages (debian/) into build/deb/, then lintian; as root
# it installs the packaging tools and build dependencies itself.
deb:
	@scripts/deb.sh build/deb

bench: deps
	@$(MAKE) --no-print-directory benches all
	@scripts/run-bench.sh $(B)

# --- installation -----------------------------------------------------------

SYSUSERSDIR   ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR   ?= $(PREFIX)/lib/tmpfiles.d
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR)
	install -m 0755 $(B)/rcupoold $(DESTDIR)$(SBINDIR)/rcupoold
	install -m 0755 $(B)/rcupoolctl $(DESTDIR)$(BINDIR)/rcupoolctl
	install -m 0755 $(B)/$(SOFILE) $(DESTDIR)$(LIBDIR)/$(SOFILE)
	ln -sf $(SOFILE) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/librcupool.so
	install -m 0644 $(B)/librcupool.a $(DESTDIR)$(LIBDIR)/librcupool.a
	install -m 0644 include/rcupool.h $(DESTDIR)$(INCLUDEDIR)/rcupool.h
	install -m 0644 $(B)/rcupool.pc $(DESTDIR)$(LIBDIR)/pkgconfig/rcupool.pc
	install -d $(DESTDIR)$(SYSCONFDIR)/rcupool/rcupoold.conf.d
	install -m 0644 conf/rcupoold.conf $(DESTDIR)$(SYSCONFDIR)/rcupool/rcupoold.conf
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(COMPLETIONDIR)
	install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)/
	install -m 0644 units/rcupool.sysusers $(DESTDIR)$(SYSUSERSDIR)/rcupool.conf
	install -m 0644 $(B)/units/rcupool.tmpfiles $(DESTDIR)$(TMPFILESDIR)/rcupool.conf
	install -m 0644 $(B)/man/rcupoold.conf.5 $(DESTDIR)$(MANDIR)/man5/rcupoold.conf.5
	install -m 0644 $(B)/man/rcupoold.8 $(B)/man/rcupoolctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 completion/rcupoolctl $(DESTDIR)$(COMPLETIONDIR)/rcupoolctl

# The configuration file is left alone: it may hold local changes.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/rcupoold $(DESTDIR)$(BINDIR)/rcupoolctl \
		$(DESTDIR)$(LIBDIR)/$(SOFILE) $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/librcupool.so $(DESTDIR)$(LIBDIR)/librcupool.a \
		$(DESTDIR)$(INCLUDEDIR)/rcupool.h $(DESTDIR)$(LIBDIR)/pkgconfig/rcupool.pc \
		$(DESTDIR)$(UNITDIR)/rcupoold.service $(DESTDIR)$(UNITDIR)/rcupoold.socket \
		$(DESTDIR)$(SYSUSERSDIR)/rcupool.conf $(DESTDIR)$(TMPFILESDIR)/rcupool.conf \
		$(DESTDIR)$(MANDIR)/man5/rcupoold.conf.5 $(DESTDIR)$(MANDIR)/man8/rcupoold.8 \
		$(DESTDIR)$(MANDIR)/man8/rcupoolctl.8 $(DESTDIR)$(COMPLETIONDIR)/rcupoolctl

clean:
	rm -rf build

format:
	clang-format -i $(wildcard include/*.h proto/*.[ch] lib/*.[ch] daemon/*.[ch] cli/*.[ch] \
		tests/*.[ch] tests/lib/*.[ch] bench/*.[ch])

-include $(shell find $(B) -name '*.d' -type f 2>/dev/null)
