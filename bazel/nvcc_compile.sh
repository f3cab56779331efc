#!/bin/bash
# Compiles cuda/grad_image.cu to one PIC object for the --config=cuda build
# (called by the top-level BUILD's genrule, in the execroot), and writes what
# it built for as a JSON fragment for _build_info.json.
#   nvcc_compile.sh NVCC ARCHS SRC OUT INFO
# With SRC and OUT "-" it only writes INFO.
# ARCHS is CMake's CMAKE_CUDA_ARCHITECTURES list with commas: "NN-real" gives
# SASS only, "NN-virtual" PTX only, "NN" both. "auto" picks CMake's default
# for the toolkit's major version (docs/gpu.md): CUDA 12.x TF's set
# (60,70,80,89 SASS + compute_90 PTX), CUDA 13+ 75,80,86,89,90 SASS + 90 PTX.
# Flags as CMake's Release CUDA build: -O3 -DNDEBUG, C++17, hidden visibility,
# and CRG_CUDA_DEVICE_FLAGS of CMakeLists.txt (--fmad=false -ftz=true).
set -euo pipefail
nvcc=$1 archs=$2 src=$3 out=$4 info=$5
version=$("$nvcc" --version | sed -n 's/.*release \([0-9][0-9.]*\),.*/\1/p' | head -n 1)
major=${version%%.*}
if [[ -z $major || $major -lt 12 ]]; then
  echo "nvcc_compile.sh: needs a CUDA 12 or newer toolkit, found '${version:-?}' ($nvcc)" >&2
  exit 1
fi
if [[ $archs == auto ]]; then
  if [[ $major == 12 ]]; then
    archs=60-real,70-real,80-real,89-real,90-virtual
  else
    archs=75-real,80-real,86-real,89-real,90
  fi
fi
min_driver=r580
[[ $major == 12 ]] && min_driver=r525
gencode=()
IFS=',' read -r -a list <<<"$archs"
for a in "${list[@]}"; do
  case "$a" in
    *-real) n=${a%-real}; gencode+=("-gencode=arch=compute_$n,code=sm_$n") ;;
    *-virtual) n=${a%-virtual}; gencode+=("-gencode=arch=compute_$n,code=compute_$n") ;;
    *) gencode+=("-gencode=arch=compute_$a,code=[sm_$a,compute_$a]") ;;
  esac
done
json_archs=$(printf '"%s", ' "${list[@]}")
printf '"cuda_toolkit": "%s", "cuda_architectures": [%s], "cuda_min_driver": "%s"' \
  "$version" "${json_archs%, }" "$min_driver" >"$info"
[[ $src == - ]] && exit 0
exec "$nvcc" -std=c++17 -O3 --fmad=false -ftz=true -DNDEBUG -DCRG_WITH_CUDA=1 -I. \
  -Xcompiler=-fPIC,-fvisibility=hidden "${gencode[@]}" \
  -c "$src" -o "$out"
