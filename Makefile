# onebit — the front door. `make` builds, `make run` runs the demo, `make test` runs every test.
# Output goes to build/. Sources: src/ (library, one folder a layer: core/ models/ cpu/ webgpu/
# wasm/ gen/), cli/ (the onebit command), tools/ (generators), tests/unit/ (C unit tests, one binary
# each), tests/*.test.mjs (Node tests).

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -Iinclude -MMD -MP -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64
# Include paths per layer: the core (and the model families) see only core headers, so the core
# cannot include a backend's header; a backend sees the core and its own folder; the CLI sees only
# the public header; tools and tests see everything.
CORE_INC := -Isrc/core -Isrc/gen
ALL_INC  := $(CORE_INC) -Isrc/models -Isrc/cpu -Isrc/webgpu
LDLIBS  += -lm -lpthread
B       ?= build
SO_NAME := libonebit.so.0

LIB_SRC  := $(wildcard src/*/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(B)/%.o)
TOOLS    := $(patsubst tools/%.c,$(B)/%,$(wildcard tools/*.c))
UNIT     := $(patsubst tests/unit/%.c,$(B)/%,$(wildcard tests/unit/test_*.c))
TESTBINS := $(patsubst tests/%.c,$(B)/%,$(wildcard tests/*.c))

.PHONY: all lib cli tools tests run test asan fuzz clean deps deps-run format models install uninstall
all: $(B)/onebit $(B)/$(SO_NAME) $(TOOLS) $(UNIT) $(TESTBINS)

# Objects of tests and tools are kept (make would delete them as intermediates, and a parallel
# build could then link a test whose object another rule had just removed).
.SECONDARY:

lib: $(B)/libonebit.a $(B)/$(SO_NAME)
$(B)/libonebit.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library exports the public API (the functions include/onebit.h declares) and nothing
# else: a version script listing them, made from the header.
$(B)/onebit.map: include/onebit.h
	@mkdir -p $(B)
	{ echo '{ global:'; grep -oE '\bob_[a-z0-9_]+ *\(' $< | tr -d '( ' | sort -u | sed 's/$$/;/'; echo 'local: *; };'; } >$@
$(B)/$(SO_NAME): $(LIB_OBJ) $(B)/onebit.map
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SO_NAME) -Wl,--version-script=$(B)/onebit.map $(LIB_OBJ) -o $@ $(LDLIBS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC) -c $< -o $@

# Library objects are position-independent, for the shared library (executables are PIE anyway).
$(B)/src/%.o: CFLAGS += -fPIC
$(B)/src/core/%.o $(B)/src/gen/%.o $(B)/src/models/%.o: INC = $(CORE_INC)
$(B)/src/cpu/%.o $(B)/src/wasm/%.o: INC = $(CORE_INC) -Isrc/cpu
$(B)/src/webgpu/%.o: INC = $(CORE_INC) -Isrc/cpu -Isrc/webgpu
$(B)/tools/%.o $(B)/tests/%.o: INC = $(ALL_INC)
$(B)/cli/%.o: INC = $(CORE_INC)

$(B)/onebit: $(CLI_OBJ) $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lmicrohttpd -lcjson

# tools/X.c -> build/X (tools may use cJSON for reading tokenizer.json)
$(B)/%: $(B)/tools/%.o $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcjson

$(B)/test_%: $(B)/tests/unit/test_%.o $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# the server's answer parser (cli/serve_tools.c), tested on fixed texts
$(B)/tests/unit/test_serve_tools.o: INC = $(ALL_INC) -Icli
$(B)/test_serve_tools: $(B)/tests/unit/test_serve_tools.o $(B)/cli/serve_tools.o $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcjson

# tests/X.c -> build/X (drivers for the Node tests; may use cJSON)
$(B)/%: $(B)/tests/%.o $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcjson

# per-ISA kernel flags: each SIMD kernel file gets its instruction set; the CPU backend checks the
# CPU at run time before using it. Other architectures build these files as empty tables.
ifneq ($(filter x86_64%,$(shell $(CC) -dumpmachine 2>/dev/null)),)
$(B)/src/cpu/cpu_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c
$(B)/src/cpu/cpu_avx2.o: CFLAGS += -mavx2 -mfma -mf16c
$(B)/src/cpu/tern_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c
$(B)/src/cpu/tern_avx2.o: CFLAGS += -mavx2 -mfma -mf16c
$(B)/src/cpu/qk_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c
$(B)/src/cpu/qk_avx2.o: CFLAGS += -mavx2 -mfma -mf16c
endif

# Installs missing Debian packages and npm packages (idempotent, quick when all is present).
deps:
	@bash tools/deps.sh test

deps-run:
	@bash tools/deps.sh run

models: all
	@bash tools/make-models.sh $(B)

run: deps-run all wasm
	@bash tools/run-demo.sh $(B)

test: deps
	@bash tests/run.sh

asan:
	$(MAKE) B=build/asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all

fuzz:
	@bash tests/fuzz/run.sh

format:
	clang-format -i include/*.h src/*/*.[ch] cli/*.[ch] tools/*.c tests/unit/*.c

clean:
	rm -rf build

# `make install PREFIX=/usr/local` (DESTDIR for staging): the onebit command, the static and the
# shared library, onebit.h, a pkg-config file (onebit.pc) and the man page; `make uninstall`
# removes exactly those files.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
VERSION    := $(shell sed -n 's/^\#define ONEBIT_VERSION "\(.*\)"/\1/p' include/onebit.h)
install: $(B)/onebit $(B)/libonebit.a $(B)/$(SO_NAME)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(B)/onebit $(DESTDIR)$(BINDIR)/onebit
	install -m 644 $(B)/libonebit.a $(DESTDIR)$(LIBDIR)/libonebit.a
	install -m 755 $(B)/$(SO_NAME) $(DESTDIR)$(LIBDIR)/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(LIBDIR)/libonebit.so
	install -m 644 include/onebit.h $(DESTDIR)$(INCLUDEDIR)/onebit.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' tools/onebit.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/onebit.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/onebit.pc
	install -m 644 docs/onebit.1 $(DESTDIR)$(MANDIR)/man1/onebit.1
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/onebit $(DESTDIR)$(LIBDIR)/libonebit.a $(DESTDIR)$(LIBDIR)/$(SO_NAME) \
	      $(DESTDIR)$(LIBDIR)/libonebit.so $(DESTDIR)$(INCLUDEDIR)/onebit.h $(DESTDIR)$(LIBDIR)/pkgconfig/onebit.pc \
	      $(DESTDIR)$(MANDIR)/man1/onebit.1

# wasm build: `make wasm` -> build/wasm/onebit.wasm + onebit-core.mjs (the C core as an ES module
# for web/engine.mjs, which hands it the wasm bytes, so Node needs no node environment: every
# src/*.c, ISA-specific files compile to empty tables), the threaded CPU variant onebit-mt.wasm +
# onebit-mt-core.mjs + onebit-mt-core.worker.js (below) and kernels.mjs + kernels-generic.mjs
# (src/webgpu/kernels/*.wgsl embedded by tools/embed-wgsl.mjs). Needs Debian's emscripten.
EMCC         ?= NODE_PATH=/usr/share/nodejs emcc
WB           := $(B)/wasm
WASM_OBJ     := $(patsubst src/%.c,$(WB)/obj/%.o,$(LIB_SRC))
WASM_CFLAGS  := -O3 -msimd128 -std=c11 -Wall -Wextra -Werror -Iinclude $(ALL_INC) -D_DEFAULT_SOURCE -MMD -MP
WASM_EXPORTS := _malloc _free _ob_last_error _ob_status_str _ob_model_free _ob_model_meta _ob_tokenize _ob_tokenize_prompt \
                _ob_token_bytes _ob_token_is_eog _ob_detok_init _ob_detok_push _ob_detok_flush _ob_chat_render \
                _ob_chat_render_json _ob_model_chat_template \
                _ob_context_free _ob_context_n_past _ob_context_n_ctx _ob_context_truncate _ob_context_tokens \
                _ob_eval _ob_logits _ob_sampler_free _ob_sampler_sample _ob_sampling_check _ob_limits_check \
                _ob_context_async _ob_step_begin _ob_step_end \
                _ob_gen_next _ob_gen_complete _ob_gen_text _ob_gen_token _ob_gen_cancel _ob_gen_free \
                _ob_grammar_check _ob_json_schema_to_grammar
WASM_COMMA   := ,
WASM_EMPTY   :=
WASM_SPACE   := $(WASM_EMPTY) $(WASM_EMPTY)
WASM_LDFLAGS := -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createOnebitCore -sALLOW_MEMORY_GROWTH=1 \
                -sMAXIMUM_MEMORY=4GB -sENVIRONMENT=web,worker -sFILESYSTEM=0 \
                -sEXPORTED_FUNCTIONS=$(subst $(WASM_SPACE),$(WASM_COMMA),$(strip $(WASM_EXPORTS))) \
                -sEXPORTED_RUNTIME_METHODS=HEAPU8,HEAP32,HEAPU32,HEAPF32,UTF8ToString,stringToUTF8,lengthBytesUTF8
.PHONY: wasm npm
wasm: $(WB)/onebit.wasm $(WB)/onebit-mt.wasm $(WB)/kernels.mjs $(WB)/kernels-generic.mjs
# The npm package of the browser/Node engine: build/npm/onebit-VERSION.tgz (tools/pack-npm.mjs
# prints its size and what a page downloads, and fails over the 200 KB budget).
npm: wasm
	node tools/pack-npm.mjs $(B)/npm
# Size: the page downloads the module, so only the SIMD128 kernels (src/cpu/*_wasm.c: the matrix
# products and attention, where the time goes) are built for speed; the rest (reader, tokenizer,
# Jinja, grammar, WebGPU planner, the layer loop's O(n_embd) steps) is built for size.
# qk_wasm.c (the 8-/4-bit types' kernels, a CPU fallback the 1-bit pages rarely run) is built with
# -Os: 2.8 KB less gzipped than -O3, which keeps the page within its 200 KB; tern_wasm.c (the
# ternary types, as rarely run in a page) too: 0.4 KB.
WASM_SIZE = $(if $(filter %_wasm,$*),$(if $(filter %qk_wasm %tern_wasm,$*),-Os,),-Oz)
# The link's whole-module pass (wasm-opt) for size too: 5.5 KB less gzipped, and the same speed on
# the CPU path (Bonsai-shaped file in Node, pp64 8.6-9.4 vs 8.1-8.6 tok/s, tg16 5.2-5.5 both ways).
WASM_LINK_OPT := -Oz
$(WB)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) $(WASM_SIZE) -c $< -o $@
$(WB)/onebit.wasm: $(WASM_OBJ)
	$(EMCC) $(WASM_CFLAGS) $(WASM_LINK_OPT) $(WASM_LDFLAGS) $^ -o $(WB)/onebit-core.mjs
	mv -f $(WB)/onebit-core.wasm $@
$(WB)/kernels.mjs $(WB)/kernels-generic.mjs &: tools/embed-wgsl.mjs $(wildcard src/webgpu/kernels/*.wgsl)
	node tools/embed-wgsl.mjs src/webgpu/kernels $(WB)/kernels.mjs
-include $(WASM_OBJ:.o=.d)

# The threaded CPU variant, for pages and workers that are cross-origin isolated (web/engine.mjs
# picks it; WebGPU and Node stay on the module above). Objects are compiled apart: -pthread makes
# atomics real instructions and memory shared. Emscripten 3.1.6 also writes
# onebit-mt-core.worker.js, the classic script each pthread's Web Worker runs; it finds itself
# next to onebit-mt-core.mjs (import.meta.url) and imports it from there, so both stay in
# build/wasm/. The pool of workers is started with the module (PTHREAD_POOL_SIZE, a JS expression:
# the count engine.mjs passes as Module.obWorkers), because a worker created later would need
# the event loop, which the synchronous ob_eval never returns to; with POOL_SIZE_STRICT=2 a
# pthread_create beyond the pool fails (the thread pool runs with fewer threads) instead of
# waiting for one. Memory is shared and grows up to 4 GB like the single-threaded module: browsers
# reserve the maximum of a shared memory up front (address space, not RAM) and never move it, so
# growth is cheap; its cost is that JS views go stale when another thread grows it, which
# engine.mjs handles. Where 4 GB cannot be reserved the module fails to start and engine.mjs
# falls back to the single-threaded one. Both modules are built without a file system
# (FILESYSTEM=0 in WASM_LDFLAGS: half the JS, 13 KB gzipped, which keeps them within the engine's
# download budget): the engine hands the core whole files in memory, and the C paths that open
# files (ob_model_load_file, gguf_write, the /sys reads of ob_default_threads) are not reachable
# from JS.
WASM_MT_OBJ     := $(patsubst src/%.c,$(WB)/obj-mt/%.o,$(LIB_SRC))
WASM_MT_LDFLAGS := $(WASM_LDFLAGS) -pthread -sPTHREAD_POOL_SIZE='(Module.obWorkers|0)' -sPTHREAD_POOL_SIZE_STRICT=2 \
                   -sDEFAULT_PTHREAD_STACK_SIZE=256KB -Wno-pthreads-mem-growth
$(WB)/obj-mt/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) $(WASM_SIZE) -pthread -c $< -o $@
$(WB)/onebit-mt.wasm: $(WASM_MT_OBJ)
	$(EMCC) $(WASM_CFLAGS) $(WASM_LINK_OPT) -pthread $(WASM_MT_LDFLAGS) $^ -o $(WB)/onebit-mt-core.mjs
	mv -f $(WB)/onebit-mt-core.wasm $@
-include $(WASM_MT_OBJ:.o=.d)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(patsubst $(B)/%,$(B)/tests/unit/%.d,$(UNIT))
