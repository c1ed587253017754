# maelre-bench build. `make` builds build/maelre-bench; `make test` runs the Criterion suite;
# `make run` runs the default main job. Each first installs missing Debian packages.
CC ?= cc
ifeq ($(origin CC),default)
CC = cc
endif
BUILD ?= build
SANITIZE ?=
# MPI=1 (default): Open MPI (Debian libopenmpi-dev) for `sweep` across ranks; MPI=0 builds without
# it (tasks/dist.c then reports one rank) into build-nompi/. Flags are read when compiling, i.e.
# after install-deps has run.
MPI ?= 1

# Probe optional flags before using them.
probe = $(shell printf 'int main(void){return 0;}' | $(CC) $(1) -x c - -o /dev/null 2>/dev/null && echo $(1))
OPENMP := $(call probe,-fopenmp)
# One binary for every x86-64 (issue 12): the library is built for the baseline, and the kernels
# for wider vector units are in their own files with per-file flags, chosen at run time from the
# CPU's features (core/kernels.h; MAELRE_KERNELS=avx512|avx2|plain forces a set). MARCH adds a
# -march to everything (e.g. `make MARCH=-march=native`: faster baseline code, not portable).
MARCH ?=
ISA_AVX512 := -mavx512f -mavx512dq -mavx2 -mfma
ISA_AVX2   := -mavx2 -mfma

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter $(MARCH) $(OPENMP) -I. -I/usr/include/stb
# OpenBLAS: Debian's OpenMP build (libopenblas0-openmp) when installed, so that BLAS calls and the
# row loops share one GOMP thread pool; the default pthread build's workers spin-yield against
# the OpenMP threads on a few cores (perf, MAELRE N = 4096 training, 2 threads: ~20 % of the time
# in sched_yield). Linked by path with an rpath: the system-wide alternative is left alone.
OPENBLAS_OMP := /usr/lib/x86_64-linux-gnu/openblas-openmp
ifneq ($(wildcard $(OPENBLAS_OMP)/libopenblas.so),)
CFLAGS += -I/usr/include/x86_64-linux-gnu/openblas-openmp
LDLIBS += -L$(OPENBLAS_OMP) -Wl,-rpath,$(OPENBLAS_OMP)
endif
LDLIBS += -lopenblas -lcjson -lsndfile -lsamplerate -lz -lm
LDFLAGS += $(OPENMP)
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=$(SANITIZE)
override BUILD := $(BUILD)-san
endif
ifeq ($(MPI),1)
MPI_CFLAGS = $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS = $(shell pkg-config --libs ompi-c 2>/dev/null || echo -lmpi)
CFLAGS += -DMAELRE_MPI $(MPI_CFLAGS)
LDLIBS += $(MPI_LIBS)
else
override BUILD := $(BUILD)-nompi
endif

LIB_SRC  := $(sort $(wildcard core/*.c loaders/*.c tasks/*.c results/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS_OK  := build/.deps-ok

.PHONY: all deps test run fuzz fixtures bench clean
.SECONDARY:
all: $(BUILD)/maelre-bench

$(DEPS_OK): scripts/install-deps.sh
	@scripts/install-deps.sh
	@mkdir -p build && touch $@
deps: $(DEPS_OK)

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# Debian's stb_image 2.27 shifts by >= 32 on JPEG entropy data cut mid-code (UB, memory-safe;
# loaders/stb_impl.c). Only that translation unit is exempt from the shift check.
$(BUILD)/obj/loaders/stb_impl.o: CFLAGS += -fno-sanitize=shift
$(BUILD)/obj/core/attn_softmax_avx512.o: CFLAGS += $(ISA_AVX512)
$(BUILD)/obj/core/attn_softmax_avx2.o: CFLAGS += $(ISA_AVX2)
$(BUILD)/obj/core/rows_avx512.o: CFLAGS += $(ISA_AVX512)
$(BUILD)/obj/core/rows_avx2.o: CFLAGS += $(ISA_AVX2)
$(BUILD)/obj/core/gemm_avx512.o: CFLAGS += $(ISA_AVX512)
$(BUILD)/obj/core/merge_avx512.o: CFLAGS += $(ISA_AVX512)
$(BUILD)/obj/core/merge_avx2.o: CFLAGS += $(ISA_AVX2)

$(BUILD)/libmaelre.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/maelre-bench: $(CLI_OBJ) $(BUILD)/libmaelre.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libmaelre.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcriterion

# Tests run from the repo root (fixtures live in tests/reference/). The CLI is built first
# because some tests exercise it end to end.
test: $(TESTS) $(BUILD)/maelre-bench
	@MAELRE_BIN=$(BUILD)/maelre-bench TEST_JOBS=$(if $(SANITIZE),1,2) scripts/run-tests.sh $(TESTS)

# The main job: an equal-time comparison on generated ListOps (vanilla vs MAELRE, 90 s of training
# each on 2 threads, lr 2e-3 from tasks/overrides/short-run.json; validation excluded from the
# budget), then the report (table and plots) in out/listops-equal-time/report.
RUN_OUT ?= out/listops-equal-time
run: $(BUILD)/maelre-bench
	$(BUILD)/maelre-bench run --task lra-listops --method vanilla,maelre --time-budget 90 --batch 16 \
	  --train-limit 8000 --test-limit 300 --threads 2 --config tasks/overrides/short-run.json \
	  --data-root $${MAELRE_DATA:-data} --out $(RUN_OUT)
	$(BUILD)/maelre-bench report $(RUN_OUT) --out $(RUN_OUT)/report

fixtures:
	scripts/install-deps.sh python3-torch python3-numpy
	/usr/bin/python3 tests/reference/make_fixtures.py tests/reference

# Speed benchmark (bench/README.md): C vs PyTorch training ms/sample and OpenBLAS's sgemm ceiling,
# measured in one run on this machine. Not part of `make test`: times belong in benchmarks.
$(BUILD)/bench/sgemm_rate: bench/sgemm_rate.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/fma_peak: bench/fma_peak.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS)

bench: $(BUILD)/maelre-bench $(BUILD)/bench/sgemm_rate $(BUILD)/bench/fma_peak
	@scripts/install-deps.sh python3-torch
	MAELRE_BIN=$(BUILD)/maelre-bench SGEMM_BIN=$(BUILD)/bench/sgemm_rate FMA_BIN=$(BUILD)/bench/fma_peak \
	  bench/compare_pytorch.sh

# Fuzzing (fuzz/README.md): `make fuzz` builds build/fuzz/fuzz_<name> from every fuzz/fuzz_*.c with
# clang + libFuzzer, ASan and UBSan, against the library sources compiled with the same flags into
# build/fuzz/obj (so the sanitizers see inside the loaders). Run e.g. build/fuzz/fuzz_wav CORPUS_DIR.
FUZZ_CC     ?= clang
FUZZ_DIR    := build/fuzz
FUZZ_OPENMP := $(shell printf 'int main(void){return 0;}' | $(FUZZ_CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -I. -I/usr/include/stb \
               $(FUZZ_OPENMP) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer -Wno-pass-failed
FUZZ_SRC    := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN    := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIBOBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)

fuzz: $(FUZZ_BIN) $(FUZZ_DIR)/make_seeds

# Seed inputs (fuzz/make_seeds.c): a plain build, it only writes files.
$(FUZZ_DIR)/make_seeds: fuzz/make_seeds.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) -O1 -I/usr/include/stb $< -o $@ -lsndfile -lm

$(FUZZ_DIR)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/obj/loaders/stb_impl.o: FUZZ_CFLAGS += -fno-sanitize=shift
$(FUZZ_DIR)/obj/core/attn_softmax_avx512.o: FUZZ_CFLAGS += $(ISA_AVX512)
$(FUZZ_DIR)/obj/core/attn_softmax_avx2.o: FUZZ_CFLAGS += $(ISA_AVX2)
$(FUZZ_DIR)/obj/core/rows_avx512.o: FUZZ_CFLAGS += $(ISA_AVX512)
$(FUZZ_DIR)/obj/core/rows_avx2.o: FUZZ_CFLAGS += $(ISA_AVX2)
$(FUZZ_DIR)/obj/core/gemm_avx512.o: FUZZ_CFLAGS += $(ISA_AVX512)
$(FUZZ_DIR)/obj/core/merge_avx512.o: FUZZ_CFLAGS += $(ISA_AVX512)
$(FUZZ_DIR)/obj/core/merge_avx2.o: FUZZ_CFLAGS += $(ISA_AVX2)

$(FUZZ_DIR)/libmaelre.a: $(FUZZ_LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz/fuzz_%.o $(FUZZ_DIR)/libmaelre.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $^ -o $@ $(LDLIBS)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TESTS:$(BUILD)/tests/%=$(BUILD)/obj/tests/%.d)
ifneq ($(filter fuzz $(FUZZ_DIR)/%,$(MAKECMDGOALS)),)
-include $(FUZZ_LIBOBJ:.o=.d) $(FUZZ_SRC:%.c=$(FUZZ_DIR)/obj/%.d)
endif
