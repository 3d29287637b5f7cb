# barge build. `make` builds the three programs into build/, `make test` runs the
# unit tests, the e2e suites, and the store-heavy ones again with the PostgreSQL
# store (e2e-postgres), `make run` starts barged --dev.
# `make test-postgres` runs every e2e suite again with the PostgreSQL store.
# SANITIZE=address,undefined builds everything with those sanitizers into
# build/sanitize/ and runs the same tests against it.

CC       ?= gcc
SANITIZE ?=
PYTEST   ?= /usr/bin/python3 -m pytest
PYTEST_ARGS ?=
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
                tests/e2e/test_service_deployments.py

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
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ljsonnet -lpthread -lm

MAINS    := src/barged/main.c src/agent/main.c src/cli/main.c
LIB_SRCS := $(filter-out $(MAINS),$(wildcard src/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/unit/test_*.c)
TESTS    := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
PROGRAMS := $(BUILD)/barged $(BUILD)/barge-agent $(BUILD)/barge

.PHONY: all setup test unit e2e e2e-postgres test-postgres run clean format bench
all: setup $(PROGRAMS)

setup:
	@./scripts/setup

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The botocore-derived API models are embedded in the binaries (.incbin).
$(BUILD)/obj/src/api/models.o: $(wildcard data/models/*.json)

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
unit: setup $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; \
	  case $$t in */test_store*) $(PYTHON) tests/e2e/pg_fixture.py -- $$t;; *) $$t;; esac; done

e2e: all $(TESTS)
	BARGE_BIN_DIR=$(CURDIR)/$(BUILD) $(PYTEST) -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

test: all unit e2e e2e-postgres

# Every barged of these suites gets a fresh database of a PostgreSQL cluster
# that the harness starts on loopback (tests/e2e/conftest.py).
e2e-postgres: all $(TESTS)
	BARGE_TEST_STORE=postgres BARGE_BIN_DIR=$(CURDIR)/$(BUILD) $(PYTEST) -p no:cacheprovider \
	  $(PG_CI_SUITES) $(PYTEST_ARGS)

test-postgres: all $(TESTS)
	BARGE_TEST_STORE=postgres BARGE_BIN_DIR=$(CURDIR)/$(BUILD) $(PYTEST) -p no:cacheprovider \
	  $(PG_SUITES) $(PYTEST_ARGS)

run: all
	$(BUILD)/barged --dev

bench: all
	@./bench/run

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c)

clean:
	rm -rf build

# Keep object files make considers intermediate (the test binaries' objects).
.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
