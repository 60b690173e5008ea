# hypr top-level Makefile.
#
#   make            build the VMM, the guest agent, the initramfs and the guest kernel
#   make demo       install what is missing, build everything, boot an example
#   make test       install what is missing, build everything, run every test
#   make fuzz       build the libFuzzer targets (clang)
#   make bench      run the benchmarks in bench/
#   make install    install the programs, kernel and initramfs under PREFIX (/usr/local)
#   make install-systemd   install, plus the hyprd unit in /etc/systemd/system
#
# Sources are found by wildcard, one rule per kind of directory:
#   common/*.c, vmm/*.c, builder/*.c,
#   kestrel/lib/*.c, daemon/*.c, cli/*.c,
#   net/*.c                               -> host libraries in build/lib
#   cmd/NAME.c                            -> bin/NAME (a host program)
#   kestrel/agent/*.c + kestrel/lib/*.c   -> build/guest/kestrel (static PID 1)
#   tests/guest/NAME.c                    -> build/guest/NAME (static guest test program)
#   tests/unit/test_NAME.c                -> build/tests/test_NAME
#   tests/fuzz/fuzz_NAME.c                -> build/fuzz/fuzz_NAME (clang libFuzzer)
# The guest kernel is built by mk/kernel.sh and cached under ~/.cache/hypr.

CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -MMD -MP
# the commit, for `hypr version` (only the two files that report it use it)
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
$(B)/obj/daemon/system.o $(B)/obj/cli/cmd_system.o: CFLAGS += -DHYPR_GIT_COMMIT='"$(GIT_COMMIT)"'
LDLIBS  := -lext2fs -lcom_err -lyaml -lnftables -lmnl -lmicrohttpd -lcurl -lsqlite3 -ljansson -lcrypto -larchive -lseccomp -lpthread
GUEST_CFLAGS := $(CFLAGS) -static -Os

B := build
COMMON_SRC  := $(wildcard common/*.c)
VMM_SRC     := $(wildcard vmm/*.c)
BUILDER_SRC := $(wildcard builder/*.c)
KLIB_SRC    := $(wildcard kestrel/lib/*.c)
DAEMON_SRC  := $(wildcard daemon/*.c)
CLI_SRC     := $(wildcard cli/*.c)
NET_SRC     := $(wildcard net/*.c)
MANIFEST_SRC := $(wildcard manifests/*.c)
RECON_SRC   := $(wildcard reconciler/*.c)
# host_*.c files of kestrel/lib use host-only libraries (libarchive): not in the guest
KLIB_GUEST  := $(filter-out kestrel/lib/host_%,$(KLIB_SRC))
AGENT_SRC   := $(wildcard kestrel/agent/*.c)
CMD_SRC     := $(wildcard cmd/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
GUESTT_SRC  := $(wildcard tests/guest/*.c)
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)

HOST_LIBS := $(B)/lib/libhyprdaemon.a $(B)/lib/libhyprrecon.a $(B)/lib/libhyprcli.a $(B)/lib/libhyprmanifest.a $(B)/lib/libhyprnet.a $(B)/lib/libhyprbuilder.a $(B)/lib/libhyprvmm.a $(B)/lib/libkestrel.a $(B)/lib/libhyprcommon.a
BINS      := $(patsubst cmd/%.c,bin/%,$(CMD_SRC))
UNITS     := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
GUESTT    := $(patsubst tests/guest/%.c,$(B)/guest/%,$(GUESTT_SRC))
FUZZERS   := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))

.PHONY: all deps kernel test demo fuzz bench clean install install-systemd
all: $(BINS) $(B)/guest/kestrel $(B)/initramfs.cpio $(UNITS) $(GUESTT) kernel

deps:
	@bash scripts/deps.sh

kernel:
	@mkdir -p $(B)
	@bash mk/kernel.sh $(B)/kernel

# host objects
$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<
$(B)/lib/libhyprcommon.a: $(patsubst %.c,$(B)/obj/%.o,$(COMMON_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libhyprvmm.a: $(patsubst %.c,$(B)/obj/%.o,$(VMM_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libkestrel.a: $(patsubst %.c,$(B)/obj/%.o,$(KLIB_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libhyprbuilder.a: $(patsubst %.c,$(B)/obj/%.o,$(BUILDER_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libhyprdaemon.a: $(patsubst %.c,$(B)/obj/%.o,$(DAEMON_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libhyprcli.a: $(patsubst %.c,$(B)/obj/%.o,$(CLI_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libhyprnet.a: $(patsubst %.c,$(B)/obj/%.o,$(NET_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libhyprmanifest.a: $(patsubst %.c,$(B)/obj/%.o,$(MANIFEST_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libhyprrecon.a: $(patsubst %.c,$(B)/obj/%.o,$(RECON_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
bin/%: $(B)/obj/cmd/%.o $(HOST_LIBS)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $< $(HOST_LIBS) $(LDLIBS)
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(HOST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(HOST_LIBS) $(LDLIBS)

# guest (static) objects
$(B)/gobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<
$(B)/guest/kestrel: $(patsubst %.c,$(B)/gobj/%.o,$(AGENT_SRC) $(KLIB_GUEST) $(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -o $@ $^
$(B)/guest/%: $(B)/gobj/tests/guest/%.o
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -o $@ $^

$(B)/initramfs.cpio: $(B)/guest/kestrel bin/hypr-mkinitramfs
	bin/hypr-mkinitramfs -o $@ $(B)/guest/kestrel

# Each fuzz target links only the sources it exercises: FUZZ_SRC_<name>.
FUZZ_SRC_fuzz_virtq := vmm/virtqueue.c common/error.c
FUZZ_SRC_fuzz_kestrel_config := kestrel/lib/config.c kestrel/lib/proto.c common/error.c
FUZZ_SRC_fuzz_kestrel_proto := kestrel/lib/proto.c common/error.c
FUZZ_SRC_fuzz_unpack := builder/unpack.c common/error.c
FUZZ_SRC_fuzz_dns := net/dns.c common/error.c
FUZZ_SRC_fuzz_compose := $(wildcard manifests/*.c) common/error.c
FUZZ_SRC_fuzz_dockerfile := builder/dockerfile.c builder/dockerfile_expand.c builder/dockerignore.c common/error.c
fuzz: $(FUZZERS)
.SECONDEXPANSION:
# keep objects: they are intermediate files of the pattern chains
.SECONDARY:
$(B)/fuzz/%: tests/fuzz/%.c $$(FUZZ_SRC_$$*)
	@mkdir -p $(dir $@)
	clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -o $@ $< \
	  $(FUZZ_SRC_$*) $(LDLIBS)

test: deps all
	@bash tests/run

demo: deps all
	@bash scripts/demo.sh

bench: deps all
	@bash bench/boot
	@bash bench/pull
	@bash bench/net
	@bash bench/compose
	@bash bench/build
	@bash tests/e2e/prepare >/dev/null && bash bench/api

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/hypr $(DESTDIR)$(PREFIX)/share/doc/hypr
	install -m 0755 bin/hypr bin/hyprd bin/hypr-shim bin/hypr-vmm bin/hypr-layer bin/kestrel-ctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(B)/kernel/vmlinux $(B)/initramfs.cpio $(DESTDIR)$(PREFIX)/lib/hypr/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/hypr/
install-systemd: install
	sed 's|/usr/local|$(PREFIX)|g' contrib/systemd/hyprd.service >$(DESTDIR)/etc/systemd/system/hyprd.service
	systemctl daemon-reload 2>/dev/null || true

clean:
	rm -rf $(B)/obj $(B)/gobj $(B)/lib $(B)/tests $(B)/guest $(B)/fuzz $(B)/initramfs.cpio bin

-include $(shell find $(B)/obj $(B)/gobj -name '*.d' 2>/dev/null)
