#!/usr/bin/env bash
# Builds the kit device-check.sh runs on a GPU machine that has no Java and no Maven:
#   cuda/target/device-kit/{jre/, lib/*.jar, test-classes/, oracle/*.gguf, oracle-types/*.gguf, device-check.sh}
# jre/ is a jlink'd Java of the modules the check uses (no debug info, headers or man pages,
# compressed, libjvm.so stripped of its symbol table); lib/ holds the runtime (without the bundled
# 15 MB demo model, which the check never loads), cuda, JCuda with only its driver-API native library
# (the 24 MB PTX-compiler library is left out), slf4j, assertj (without byte-buddy, which only soft
# assertions use) and junit-platform-console-standalone jars; oracle/ tiny oracle models of every
# architecture from model-runtime's test resources. The kit stays under the 64 MiB a device machine
# takes along (measured size in docs/cuda.md).
# Needs: JDK 17+ with jlink, Maven (the local repository only: nothing is installed into it), nvcc
# (else the kit has no kernels).
#
# usage: cuda/package-device-check.sh                   (from anywhere)
#        MODELS='tiny-mixtral-*.gguf' cuda/package-device-check.sh   (another model set)
#        MVN_FLAGS=-o cuda/package-device-check.sh      (extra Maven flags, e.g. offline)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
kit="$here/target/device-kit"
oracle=${ORACLE_DIR:-$root/model-runtime/src/test/resources/oracle}
# the in-repo copies, every architecture (llama dense, Mixtral, qwen3moe as Q8_0 and Q4_0; qwen2moe,
# bailingmoe2 as Q8_0): 10.7 MB. F32/F16 files come from ORACLE_DIR=../shared/oracle/models with MODELS.
models=${MODELS:-tiny-*-q8_0.gguf tiny-*-q4_0.gguf}
# oracle-types/: the block-type models of ../shared/oracle (one per type: Q2_K, Q3_K, Q4_K, Q5_K, IQ4_NL,
# Q6_K on qwen3moe, Q5_0 with Q4_K/Q6_K/Q8_0 and granite's multipliers; gpt-oss MXFP4 for the YaRN
# parameters, its model refused on the device for its sliding-window layers): 14.2 MB. TYPES_MODELS adds
# more (tiny-kmoe-bf16.gguf 7.9 MB, tiny-kmoe-q4_k_m.gguf, ...) where the 64 MiB allow.
types_oracle=${TYPES_ORACLE_DIR:-$root/../shared/oracle/models}
types_models=${TYPES_MODELS:-tiny-kmoe-q2_k.gguf tiny-kmoe-q3_k.gguf tiny-kmoe-q4_k.gguf tiny-kmoe-q5_k.gguf tiny-kmoe-iq4_nl.gguf tiny-kqwen3moe-q6_k.gguf tiny-granitemoe-q4_k_m.gguf tiny-gpt-oss-mxfp4.gguf}
console_version=1.14.1 # junit-platform matching the junit-bom 5.14.1 pinned in the root pom
read -r -a mvn_flags <<< "-q -B ${MVN_FLAGS:-}"

cd "$root"
rm -rf "$kit"
mkdir -p "$kit/lib" "$kit/oracle" "$kit/oracle-types"
# one reactor build: the runtime jar comes from model-runtime/target, never from an installed copy
mvn "${mvn_flags[@]}" package dependency:copy-dependencies -pl model-runtime,cuda -DskipTests -DincludeScope=test \
  -DoutputDirectory="$kit/lib" -DexcludeGroupIds=com.fasterxml.jackson.core,net.bytebuddy \
  -DexcludeArtifactIds=junit-jupiter,junit-jupiter-api,junit-jupiter-params,junit-jupiter-engine,junit-platform-engine,junit-platform-commons,junit-platform-launcher,opentest4j,apiguardian-api
if ! grep -q '^status=built' cuda/target/classes/io/moestream/cuda/kernels/kernels.properties; then
  echo "warning: the kernels were not built (no nvcc): the kit's GPU tests will fail with 'no CUDA kernels were built'" >&2
fi
mvn "${mvn_flags[@]}" dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$console_version" -DoutputDirectory="$kit/lib"
cp cuda/target/moestream-cuda-*.jar "$kit/lib/"
cp model-runtime/target/moestream-model-runtime-*.jar "$kit/lib/" # the reactor's jar, as copy-dependencies may not have it

# drop_entries JAR PREFIX...: the jar without the entries under the prefixes
drop_entries() {
  python3 - "$@" <<'EOF'
import os, sys, zipfile
src, prefixes = sys.argv[1], tuple(sys.argv[2:])
tmp = src + ".tmp"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        if not item.filename.startswith(prefixes):
            zout.writestr(item, zin.read(item.filename))
os.replace(tmp, src)
EOF
}
# the runtime jar without the bundled demo model; JCuda's natives with only the driver API (CudaDriver loads nothing else)
drop_entries "$(ls "$kit"/lib/moestream-model-runtime-*.jar)" io/moestream/runtime/models/
drop_entries "$(ls "$kit"/lib/jcuda-natives-*.jar)" lib/libJNvPTXCompiler lib/libJNvrtc lib/libJCudaRuntime

cp -r cuda/target/test-classes "$kit/test-classes"
cp "$here/device-check.sh" "$kit/"
for pattern in $models; do
  for f in "$oracle"/$pattern; do
    [[ -f "$f" ]] && cp "$f" "$kit/oracle/"
  done
done

for pattern in $types_models; do
  for f in "$types_oracle"/$pattern; do
    if [[ -f "$f" ]]; then cp "$f" "$kit/oracle-types/"; else echo "warning: no $f: the kit checks fewer block types" >&2; fi
  done
done

# java.logging for JCuda, jdk.unsupported for Unsafe users, the Vector API for the CPU kernels
jlink --add-modules java.base,java.logging,jdk.unsupported,jdk.incubator.vector \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output "$kit/jre"
if command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded "$kit/jre/lib/server/libjvm.so" # the distribution's libjvm keeps its symbol table: 24 -> 20 MB
fi

du -sh "$kit"/* | sed 's/^/  /'
bytes=$(du -sb "$kit" | cut -f1)
echo "kit ready: $kit, $bytes bytes ($(( bytes / 1048576 )) MiB; copy it to the GPU machine and run device-check.sh there)"
if (( bytes > 64 * 1048576 )); then
  echo "error: the kit is $bytes bytes, over the 64 MiB a device machine takes along: drop models (MODELS=...)" >&2
  exit 1
fi
