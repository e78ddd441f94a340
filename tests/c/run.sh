#!/usr/bin/env bash
# Build and run the pure-C scheduler test (tests/c/test_sched.c) against the
# pure-C part of cdask: every .c file of src/core, src/kernels and src/io
# (src/python is the only folder that includes Python's headers) -- no Python
# involved, except to ask the scipy-openblas32 package where its headers and
# library are.  The program is always built with assertions and -DCD_DEBUG=1,
# so the scheduler's debug checks (heap order, task state transitions, counts
# never below zero) run in every build of it.
#
#   tests/c/run.sh                 ThreadSanitizer build (the default)
#   SANITIZE=address,undefined tests/c/run.sh
#   SANITIZE= tests/c/run.sh       plain -O2 build
#   SCALE=0.2 tests/c/run.sh       smaller graphs (argument of test_sched)
#   ONLY=cancel tests/c/run.sh     run one test
#   CC=clang OUT=/tmp/x tests/c/run.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="${SRC:-$root/src}"

CC="${CC:-gcc}"
PYTHON="${PYTHON:-python3}"
SANITIZE="${SANITIZE-thread}"
SCALE="${SCALE:-1}"
ONLY="${ONLY:-}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/cdask-ctest.XXXXXX")}"
mkdir -p "$OUT"

blas_inc="$("$PYTHON" -c 'import scipy_openblas32 as s; print(s.get_include_dir())')"
blas_lib="$("$PYTHON" -c 'import scipy_openblas32 as s; print(s.get_lib_dir())')"
blas_name="$("$PYTHON" -c 'import scipy_openblas32 as s; print(s.get_library())')"

cflags=(-std=gnu11 -pthread -g -Wall -Wextra -fno-strict-aliasing
        -DBLAS_SYMBOL_PREFIX=scipy_ -DCD_DEBUG=1 -I"$src" -I"$blas_inc")
if [[ -n "$SANITIZE" ]]; then
    cflags+=(-O1 -fsanitize="$SANITIZE" -fno-omit-frame-pointer)
    [[ "$SANITIZE" == *undefined* ]] && cflags+=(-fno-sanitize-recover=undefined)
else
    cflags+=(-O2)
fi

bin="$OUT/test_sched"
echo "tests/c: $CC ${SANITIZE:+-fsanitize=$SANITIZE }-> $bin"
"$CC" "${cflags[@]}" -o "$bin" \
    "$here/test_sched.c" "$src"/core/*.c "$src"/kernels/*.c "$src"/io/*.c \
    -L"$blas_lib" -l"$blas_name" -Wl,-rpath,"$blas_lib" -lm

# OpenBLAS is not instrumented; keep it single-threaded so that its own
# threads stay out of the sanitizer's way.
export OPENBLAS_NUM_THREADS=1
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
exec "$bin" "$SCALE" $ONLY
