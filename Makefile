# onebit — the front door. `make` builds, `make run` runs the demo, `make test` runs every test.
# Output goes to build/. Sources: src/ (library), cli/ (the onebit command), tools/ (generators),
# tests/unit/ (C unit tests, one binary each), tests/*.test.mjs (Node tests).

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -Iinclude -Isrc -MMD -MP -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64
LDLIBS  += -lm -lpthread
B       ?= build

LIB_SRC  := $(wildcard src/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(B)/%.o)
TOOLS    := $(patsubst tools/%.c,$(B)/%,$(wildcard tools/*.c))
UNIT     := $(patsubst tests/unit/%.c,$(B)/%,$(wildcard tests/unit/test_*.c))
TESTBINS := $(patsubst tests/%.c,$(B)/%,$(wildcard tests/*.c))

.PHONY: all lib cli tools tests run test asan fuzz clean deps format models
all: $(B)/onebit $(TOOLS) $(UNIT) $(TESTBINS)

lib: $(B)/libonebit.a
$(B)/libonebit.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/onebit: $(CLI_OBJ) $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# tools/X.c -> build/X (tools may use cJSON for reading tokenizer.json)
$(B)/%: $(B)/tools/%.o $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcjson

$(B)/test_%: $(B)/tests/unit/test_%.o $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# tests/X.c -> build/X (drivers for the Node tests; may use cJSON)
$(B)/%: $(B)/tests/%.o $(B)/libonebit.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcjson

# Installs missing Debian packages and npm packages (idempotent, quick when all is present).
deps:
	@bash tools/deps.sh

models: all
	@bash tools/make-models.sh $(B)

run: deps all models
	@bash tools/run-demo.sh $(B)

test: deps
	@bash tests/run.sh

asan:
	$(MAKE) B=build/asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" all

fuzz:
	@bash tests/fuzz/run.sh

format:
	clang-format -i include/*.h src/*.[ch] cli/*.[ch] tools/*.c tests/unit/*.c

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
