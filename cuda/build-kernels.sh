#!/usr/bin/env bash
# Compiles src/main/cuda/*.cu into class-path resources for the CUDA backend, one fatbin per file
# (sm_90 SASS + compute_90 PTX, so newer cards JIT the PTX), and writes kernels.properties listing
# what was built and each file's entry points. Without nvcc it writes a manifest saying so and
# succeeds: the backend then reports that no kernels were built. A compile error fails the build.
#
# usage: build-kernels.sh <src dir> <out dir> <work dir>   (Maven runs it in generate-resources)
# NVCC=/path/to/nvcc picks a compiler; NVCC=none builds as if there were none.
set -euo pipefail
src=${1:?source dir}
out=${2:?output dir}
work=${3:?work dir for the PTX listings}
mkdir -p "$out" "$work"
manifest="$out/kernels.properties"
arch=${MOESTREAM_CUDA_ARCH:-90}

NVCC=${NVCC:-}
if [[ "$NVCC" == none ]]; then
  NVCC=
elif [[ -z "$NVCC" ]]; then
  for c in nvcc /usr/local/cuda/bin/nvcc; do
    if command -v "$c" >/dev/null 2>&1; then NVCC=$(command -v "$c"); break; fi
  done
fi
if [[ -z "$NVCC" ]]; then
  {
    echo "status=no-nvcc"
    echo "reason=nvcc was not on PATH when the module was built, so no CUDA kernels were built"
  } > "$manifest"
  echo "[build-kernels] nvcc not found: no CUDA kernels built (the CUDA backend will report it)"
  exit 0
fi

version=$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -1)
flags=(-std=c++17 -O3 -I "$src" -Werror all-warnings -Xptxas -warn-spills)
names=()
for cu in "$src"/*.cu; do
  name=$(basename "$cu" .cu)
  names+=("$name")
  fatbin="$out/$name.fatbin"
  ptx="$work/$name.ptx"
  fresh=1
  for dep in "$cu" "$src"/*.cuh "$0"; do
    [[ "$fatbin" -nt "$dep" ]] || fresh=0
  done
  if [[ -f "$fatbin" && -f "$ptx" && $fresh == 1 ]]; then
    continue
  fi
  echo "[build-kernels] nvcc $name.cu (sm_$arch + compute_$arch PTX)"
  "$NVCC" "${flags[@]}" -fatbin \
    -gencode "arch=compute_$arch,code=sm_$arch" -gencode "arch=compute_$arch,code=compute_$arch" \
    -o "$fatbin" "$cu"
  "$NVCC" "${flags[@]}" -ptx -arch="compute_$arch" -o "$ptx" "$cu"
done

{
  echo "status=built"
  echo "nvcc=$version"
  echo "arch=sm_$arch+compute_$arch"
  echo "files=$(IFS=,; echo "${names[*]}")"
  for name in "${names[@]}"; do
    entries=$(sed -n 's/^\.visible \.entry \([A-Za-z0-9_]*\)(.*/\1/p' "$work/$name.ptx" | sort | paste -sd, -)
    echo "entries.$name=$entries"
  done
} > "$manifest"
echo "[build-kernels] built ${#names[@]} kernel files with nvcc $version"
