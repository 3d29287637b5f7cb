# barge build. `make` builds the three programs into build/, `make test` runs the
# unit tests, a short fuzzing run (fuzz-ci, below), the e2e suites, and the
# store-heavy ones again with the PostgreSQL store (e2e-postgres), `make run`
# starts barged --dev.
# `make test-postgres` runs every e2e suite again with the PostgreSQL store.
# SANITIZE=address,undefined builds everything with those sanitizers into
# build/sanitize/ and runs the same tests against it.

CC       ?= gcc
SANITIZE ?=
PYTEST   ?= /usr/bin/python3 -m pytest
PYTEST_ARGS ?=
# e2e suites run in this many pytest-xdist workers, one test file per worker at
# a time (files share module fixtures). Most e2e time is spent waiting for
# containers, agents and timers, so two workers on two cores roughly halve it.
# E2E_JOBS=1 runs them in one process.
E2E_JOBS ?= 2
E2E_PAR  := $(if $(filter-out 0 1,$(E2E_JOBS)),-n $(E2E_JOBS) --dist loadfile) --durations=25
PYTHON   ?= /usr/bin/python3
# The suites `make test-postgres` runs against PostgreSQL (all by default).
PG_SUITES ?= tests/e2e
# The suites `make test` (and so CI, .ci/run) also runs against PostgreSQL:
# those that exercise the store most (clusters, task definitions with their
# families and paging, CloudWatch Logs events, services and their deployments,
# placement, tasks). They add about 5 minutes on 2 cores to the 15 of the
# SQLite run, keeping CI well under its 30. test_ha.py is not listed: it
# always runs on PostgreSQL.
PG_CI_SUITES ?= tests/e2e/test_ecs_clusters.py tests/e2e/test_ecs_taskdefs.py \
                tests/e2e/test_logs_api.py tests/e2e/test_services.py \
                tests/e2e/test_placement.py tests/e2e/test_tasks.py \
                tests/e2e/test_service_deployments.py tests/e2e/test_regions.py

# O=DIR puts the build somewhere else (e.g. one per git worktree).
ifeq ($(SANITIZE),)
BUILD    := $(if $(O),$(O),build)
OPT      := -O2
else
BUILD    := $(if $(O),$(O),build)/sanitize
OPT      := -O1 -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

PKGS     := libmicrohttpd jansson sqlite3 libpq libcurl openssl libarchive yaml-0.1
CPPFLAGS := -Isrc -I$(BUILD)/gen -D_GNU_SOURCE -MMD -MP
CFLAGS   := -std=gnu11 -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS  := -Wl,--as-needed $(if $(SANITIZE),-fsanitize=$(SANITIZE))
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ljsonnet -lwslay -lutil -lpthread -lm

MAINS    := src/barged/main.c src/agent/main.c src/cli/main.c
LIB_SRCS := $(filter-out $(MAINS),$(wildcard src/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/unit/test_*.c)
TESTS    := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
PROGRAMS := $(BUILD)/barged $(BUILD)/barge-agent $(BUILD)/barge

# Fuzzing (tests/fuzz/): one libFuzzer target per input parser. `make fuzz`
# builds them with clang, libFuzzer, ASan and UBSan into $(FUZZ_BUILD)/, over
# a copy of the library compiled by clang with coverage instrumentation (the
# gcc objects above cannot carry it). `make fuzz-ci` (part of `make test`)
# replays each committed corpus, then fuzzes each target for FUZZ_SECONDS and
# fails on any crash, leak or undefined behaviour; crashing inputs land in
# $(FUZZ_BUILD)/crash-<target>-*. Longer runs: `make fuzz-ci FUZZ_SECONDS=600`,
# or run one binary by hand (README.md, Tests).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 12
FUZZ_BUILD   := $(if $(O),$(O),build)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The library's warnings, less two clang-only ones on idioms gcc accepts
# ({NULL} sentinels, SQL split over adjacent literals in arrays).
FUZZ_CFLAGS  := -std=gnu11 -gline-tables-only -O1 $(FUZZ_SAN) -Wall -Wextra -Werror -Wshadow \
                -Wno-unused-parameter -Wno-missing-field-initializers -Wno-string-concatenation \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZERS      := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
# The same targets built by $(CC) with a plain main (tests/fuzz/replay.c) that
# runs each corpus file once: `make unit` replays the corpus as regression
# tests without clang, and under SANITIZE= too.
REPLAYS      := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz_%)

.PHONY: all setup test unit e2e e2e-postgres test-postgres run clean format bench fuzz fuzz-ci \
        check-layers
all: setup $(PROGRAMS)

setup:
	@./scripts/setup

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The botocore-derived API models are embedded in the binaries (.incbin).
$(BUILD)/obj/src/api/models.o: $(wildcard data/models/*.json)
# The web console's files are embedded the same way (console.c).
$(BUILD)/obj/src/api/console.o: $(wildcard console/*)

$(BUILD)/libbarge.a: $(LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/barged: $(BUILD)/obj/src/barged/main.o $(BUILD)/libbarge.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/barge-agent: $(BUILD)/obj/src/agent/main.o $(BUILD)/libbarge.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/barge: $(BUILD)/obj/src/cli/main.o $(BUILD)/libbarge.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libbarge.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The store's tests (test_store, test_store_logs) also run against a throwaway
# PostgreSQL cluster (they say so and skip that part when PostgreSQL cannot start).
unit: setup check-layers $(TESTS) $(REPLAYS)
	@set -e; for t in $(TESTS); do echo "== $$t"; \
	  case $$t in */test_store*) $(PYTHON) tests/e2e/pg_fixture.py -- $$t;; *) $$t;; esac; done
	@set -e; for n in $(FUZZ_NAMES); do echo "== $(BUILD)/tests/fuzz_$$n tests/fuzz/corpus/$$n"; \
	  $(BUILD)/tests/fuzz_$$n tests/fuzz/corpus/$$n; done

# Modules depend downwards only: a lower one including a higher one fails
# (the table is in scripts/check-layers; docs/architecture.md, Layers).
check-layers:
	@./scripts/check-layers

e2e: all $(TESTS)
	BARGE_BIN_DIR=$(CURDIR)/$(BUILD) $(PYTEST) -p no:cacheprovider $(E2E_PAR) tests/e2e \
	  $(PYTEST_ARGS)

test: all unit fuzz-ci e2e e2e-postgres

# Every barged of these suites gets a fresh database of a PostgreSQL cluster
# that the harness starts on loopback (tests/e2e/conftest.py).
e2e-postgres: all $(TESTS)
	BARGE_TEST_STORE=postgres BARGE_BIN_DIR=$(CURDIR)/$(BUILD) $(PYTEST) -p no:cacheprovider \
	  $(E2E_PAR) $(PG_CI_SUITES) $(PYTEST_ARGS)

test-postgres: all $(TESTS)
	BARGE_TEST_STORE=postgres BARGE_BIN_DIR=$(CURDIR)/$(BUILD) $(PYTEST) -p no:cacheprovider \
	  $(PG_SUITES) $(PYTEST_ARGS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) -Isrc -D_GNU_SOURCE -MMD -MP $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/obj/src/api/models.o: $(wildcard data/models/*.json)
$(FUZZ_BUILD)/obj/src/api/console.o: $(wildcard console/*)

$(FUZZ_BUILD)/libbarge.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libbarge.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/tests/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o \
                       $(BUILD)/libbarge.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz: setup $(FUZZERS)

# -rss_limit_mb and -timeout catch blow-ups; leak detection is on (ASan).
fuzz-ci: fuzz
	@set -e; for n in $(FUZZ_NAMES); do \
	  echo "== fuzz_$$n: replay tests/fuzz/corpus/$$n, then $(FUZZ_SECONDS) s of fuzzing"; \
	  rm -rf $(FUZZ_BUILD)/corpus/$$n; mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	  $(FUZZ_BUILD)/fuzz_$$n -runs=0 -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- \
	    tests/fuzz/corpus/$$n 2>$(FUZZ_BUILD)/fuzz_$$n.log || { tail -n 60 $(FUZZ_BUILD)/fuzz_$$n.log; exit 1; }; \
	  $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n 2>$(FUZZ_BUILD)/fuzz_$$n.log \
	    || { tail -n 60 $(FUZZ_BUILD)/fuzz_$$n.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_BUILD)/fuzz_$$n.log || true; \
	done

run: all
	$(BUILD)/barged --dev

bench: all
	@./bench/run

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c)

clean:
	rm -rf build

# Keep object files make considers intermediate (the test binaries' objects).
.SECONDARY:

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
