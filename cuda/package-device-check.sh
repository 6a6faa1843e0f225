#!/usr/bin/env bash
# Builds the kit that device-check.sh runs on a GPU machine with no Java and no Maven, carried along
# with the checkout by the device `run` call (64 MiB for both together; docs/cuda.md "Checking on a
# GPU machine"):
#   cuda/target/device-kit/device-check.sh
#   cuda/target/device-kit/kit.tar.xz   jre/, lib/*.jar, test-classes/, oracle-types/*.gguf
# The in-tree oracle models (model-runtime/src/test/resources/oracle) travel with the checkout and are
# not copied. jre/ is a jlink'd Java of the modules the check uses (no debug info, headers or man pages,
# libjvm.so stripped of its symbol table); lib/ holds the runtime (without the bundled demo model,
# which the check never loads), cuda, JCuda with only its driver-API native library, slf4j, assertj
# and junit-platform-console-standalone. The JRE's modules and the jars are stored uncompressed so
# that one xz stream over everything packs them (about 45 + 16 MB -> 13 MB). Ends with
# device-travel-size.sh: fails when checkout + kit are over 60 MiB.
# Needs: JDK 17+ with jlink, Maven (the local repository only: nothing is installed into it), python3,
# xz, nvcc (else the kit has no kernels).
#
# usage: cuda/package-device-check.sh                   (from anywhere)
#        TYPES_MODELS='tiny-kmoe-q6_k.gguf ...' cuda/package-device-check.sh   (another block-type set)
#        MVN_FLAGS=-o cuda/package-device-check.sh      (extra Maven flags, e.g. offline)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
kit="$here/target/device-kit"
stage="$here/target/device-kit-stage"
# oracle-types/: block-type models of ../shared/oracle, which the checkout does not hold; the smallest
# files that cover each weight type and architecture op once (7.8 MB + 7.9 MB BF16, 13.6 MB packed):
#   granitemoe Q4_K_M: Q4_K, Q5_K, Q6_K, Q8_0, Q5_0 fallback, granite's embedding/residual/attention/logit scales
#   gpt-oss MXFP4: MXFP4 experts, attention sinks, sliding-window layers, YaRN RoPE
#   kmoe Q2_K, Q3_K, IQ4_NL, BF16: one type throughout; olmoe Q4_K_M: olmoe's full-width Q/K norms
types_oracle=${TYPES_ORACLE_DIR:-$root/../shared/oracle/models}
types_models=${TYPES_MODELS:-tiny-granitemoe-q4_k_m.gguf tiny-gpt-oss-mxfp4.gguf tiny-kmoe-q2_k.gguf tiny-kmoe-q3_k.gguf tiny-kmoe-iq4_nl.gguf tiny-olmoe-q4_k_m.gguf tiny-kmoe-bf16.gguf}
console_version=1.14.1 # junit-platform matching the junit-bom 5.14.1 pinned in the root pom
read -r -a mvn_flags <<< "-q -B ${MVN_FLAGS:-}"

cd "$root"
rm -rf "$kit" "$stage"
mkdir -p "$kit" "$stage/lib" "$stage/oracle-types"
# one reactor build: the runtime jar comes from model-runtime/target, never from an installed copy.
# Left out: Jackson (the runtime's JSON-schema compiler only) and model-runtime's own test libraries.
mvn "${mvn_flags[@]}" package dependency:copy-dependencies -pl model-runtime,cuda -DskipTests -DincludeScope=test \
  -DoutputDirectory="$stage/lib" \
  -DexcludeGroupIds=com.fasterxml.jackson.core,com.fasterxml.jackson.dataformat,com.networknt,com.ethlo.time,org.yaml,net.bytebuddy \
  -DexcludeArtifactIds=junit-jupiter,junit-jupiter-api,junit-jupiter-params,junit-jupiter-engine,junit-platform-engine,junit-platform-commons,junit-platform-launcher,opentest4j,apiguardian-api
if ! grep -q '^status=built' cuda/target/classes/io/moestream/cuda/kernels/kernels.properties; then
  echo "warning: the kernels were not built (no nvcc): the kit's GPU tests will fail with 'no CUDA kernels were built'" >&2
fi
mvn "${mvn_flags[@]}" dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$console_version" -DoutputDirectory="$stage/lib"
cp cuda/target/moestream-cuda-*.jar "$stage/lib/"
cp model-runtime/target/moestream-model-runtime-*.jar "$stage/lib/" # the reactor's jar, as copy-dependencies may not have it

# repack JAR [PREFIX...]: the jar stored uncompressed (xz packs the kit), without the entries under the prefixes
repack() {
  python3 - "$@" <<'PY'
import os, sys, zipfile
src, prefixes = sys.argv[1], tuple(sys.argv[2:])
tmp = src + ".tmp"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
    for item in zin.infolist():
        if not (prefixes and item.filename.startswith(prefixes)):
            data = zin.read(item)
            item.compress_type = zipfile.ZIP_STORED
            zout.writestr(item, data)
os.replace(tmp, src)
PY
}
for jar in "$stage"/lib/*.jar; do
  case "$jar" in
    */moestream-model-runtime-*) repack "$jar" io/moestream/runtime/models/ ;; # without the bundled demo model
    */jcuda-natives-*) repack "$jar" lib/libJNvPTXCompiler lib/libJNvrtc lib/libJCudaRuntime ;; # CudaDriver loads only the driver API
    *) repack "$jar" ;;
  esac
done

cp -r cuda/target/test-classes "$stage/test-classes"
for name in $types_models; do
  if [[ -f "$types_oracle/$name" ]]; then cp "$types_oracle/$name" "$stage/oracle-types/"; else echo "warning: no $types_oracle/$name: the kit checks fewer block types" >&2; fi
done

# java.logging for JCuda, jdk.unsupported for Unsafe users, the Vector API for the CPU kernels
jlink --add-modules java.base,java.logging,jdk.unsupported,jdk.incubator.vector \
  --strip-debug --no-header-files --no-man-pages --compress=0 --output "$stage/jre"
if command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded "$stage/jre/lib/server/libjvm.so" # the distribution's libjvm keeps its symbol table: 24 -> 20 MB
fi

# the staged kit's own Java loads every model the check will use (status 3: no GPU here, as expected)
stage_cp=$(ls "$stage"/lib/*.jar | grep -v junit-platform-console-standalone | paste -sd:)
preflight=0
"$stage/jre/bin/java" --add-modules jdk.incubator.vector -cp "$stage/test-classes:$stage_cp" io.moestream.cuda.DeviceKitPreflight \
  "$root/model-runtime/src/test/resources/oracle" "$stage/oracle-types" 0 2>&1 | sed 's/^/  preflight: /' || preflight=${PIPESTATUS[0]}
if (( preflight != 0 && preflight != 3 )); then
  echo "error: the staged kit failed its preflight (status $preflight)" >&2
  exit 1
fi
du -sb "$stage"/* | sed 's/^/  unpacked /'
tar -C "$stage" -cf - jre lib test-classes oracle-types | xz -9 -T1 > "$kit/kit.tar.xz"
cp "$here/device-check.sh" "$kit/"
rm -rf "$stage"
du -sb "$kit"/* | sed 's/^/  /'
echo "kit ready: $kit"
"$here/device-travel-size.sh" "$kit"
