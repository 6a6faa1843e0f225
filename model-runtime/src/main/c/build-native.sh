#!/usr/bin/env bash
# Compiles the native Q8_0/Q4_0 kernels (moestream_kernels.c) into a class-path resource for
# NativeKernels. Maven runs it in generate-resources. Without gcc, or off Linux x86-64, it builds
# nothing and succeeds: the Java (Vector API / scalar) kernels are used then. A compile error
# fails the build.
#
# usage: build-native.sh <src dir> <out dir> <java home>   CC=none builds as if there were no compiler
set -euo pipefail
src=${1:?source dir}
out=${2:?output dir}
jhome=${3:?java home}
cc=${CC:-gcc}
if [[ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]]; then
  echo "[build-native] $(uname -s)-$(uname -m): no native kernels for this platform (Java kernels are used)"
  exit 0
fi
if [[ "$cc" == none ]] || ! command -v "$cc" >/dev/null 2>&1; then
  echo "[build-native] no C compiler ($cc): native kernels not built (Java kernels are used; apt-get install gcc to build them)"
  exit 0
fi
if [[ ! -f "$jhome/include/jni.h" && -f "$jhome/../include/jni.h" ]]; then
  jhome="$jhome/.."
fi
if [[ ! -f "$jhome/include/jni.h" ]]; then
  echo "[build-native] no jni.h under $jhome/include (a JRE, not a JDK?): native kernels not built"
  exit 0
fi
mkdir -p "$out"
"$cc" -O2 -std=c11 -shared -fPIC -ffp-contract=off -Wall -Wextra -Werror \
  -I "$jhome/include" -I "$jhome/include/linux" \
  -o "$out/libmoestream_kernels.so" "$src/moestream_kernels.c" -lm
echo "[build-native] built $out/libmoestream_kernels.so with $("$cc" --version | head -1)"
