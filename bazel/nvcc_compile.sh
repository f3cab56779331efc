#!/bin/bash
# Compiles cuda/grad_image.cu to one PIC object for the
# --config=cuda build (called by the top-level BUILD's genrule, in the execroot).
#   nvcc_compile.sh NVCC ARCHS SRC OUT
# ARCHS is CMake's CMAKE_CUDA_ARCHITECTURES list with commas: "NN-real" gives
# SASS only, "NN" gives SASS plus PTX (the default list ends in 90, as in CMake).
# Flags as CMake's Release CUDA build: -O3 -DNDEBUG, C++17, hidden visibility.
set -euo pipefail
nvcc=$1 archs=$2 src=$3 out=$4
gencode=()
IFS=',' read -r -a list <<<"$archs"
for a in "${list[@]}"; do
  case "$a" in
    *-real) n=${a%-real}; gencode+=("-gencode=arch=compute_$n,code=sm_$n") ;;
    *-virtual) n=${a%-virtual}; gencode+=("-gencode=arch=compute_$n,code=compute_$n") ;;
    *) gencode+=("-gencode=arch=compute_$a,code=[sm_$a,compute_$a]") ;;
  esac
done
exec "$nvcc" -std=c++17 -O3 --fmad=false -DNDEBUG -DCRG_WITH_CUDA=1 -I. \
  -Xcompiler=-fPIC,-fvisibility=hidden "${gencode[@]}" \
  -c "$src" -o "$out"
