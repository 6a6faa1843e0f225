#!/usr/bin/env bash
# Builds the kit device-check.sh runs on a GPU machine that has no Java and no Maven:
#   cuda/target/device-kit/{jre/, lib/*.jar, test-classes/, oracle/*.gguf, device-check.sh}
# jre/ is a jlink'd Java (~36 MB); lib/ holds the runtime, cuda, JCuda (+ linux-x86_64 natives),
# slf4j, assertj and junit-platform-console-standalone jars; oracle/ the oracle models the runtime
# loads (llama, qwen3moe). Needs: JDK 17+ with jlink, Maven, nvcc (else the kit has no kernels).
#
# usage: cuda/package-device-check.sh            (from anywhere)
#        MODELS='tiny-mixtral-*.gguf' cuda/package-device-check.sh   (a smaller model set)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
kit="$here/target/device-kit"
oracle=${ORACLE_DIR:-$root/../shared/oracle/models}
models=${MODELS:-tiny-llama-*.gguf tiny-mixtral-*.gguf tiny-qwen3moe-*.gguf}
console_version=1.14.1 # junit-platform matching the junit-bom 5.14.1 pinned in the root pom

cd "$root"
mvn -q -B install -pl model-runtime -DskipTests
mvn -q -B package -pl cuda -DskipTests
if ! grep -q '^status=built' cuda/target/classes/io/moestream/cuda/kernels/kernels.properties; then
  echo "warning: the kernels were not built (no nvcc): the kit's GPU tests will fail with 'no CUDA kernels were built'" >&2
fi

rm -rf "$kit"
mkdir -p "$kit/lib" "$kit/oracle"
mvn -q -B dependency:copy-dependencies -pl cuda -DincludeScope=test -DoutputDirectory="$kit/lib" \
  -DexcludeArtifactIds=junit-jupiter,junit-jupiter-api,junit-jupiter-params,junit-jupiter-engine,junit-platform-engine,junit-platform-commons,junit-platform-launcher,opentest4j,apiguardian-api
mvn -q -B dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$console_version" -DoutputDirectory="$kit/lib"
cp cuda/target/moestream-cuda-*.jar "$kit/lib/"
cp -r cuda/target/test-classes "$kit/test-classes"
cp "$here/device-check.sh" "$kit/"
for pattern in $models; do
  for f in "$oracle"/$pattern; do
    [[ -f "$f" ]] && cp "$f" "$kit/oracle/"
  done
done

jlink --add-modules java.base,java.logging,java.management,java.xml,jdk.unsupported,jdk.incubator.vector \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output "$kit/jre"

du -sh "$kit" "$kit"/* | sed 's/^/  /'
echo "kit ready: $kit (copy it to the GPU machine and run device-check.sh there)"
