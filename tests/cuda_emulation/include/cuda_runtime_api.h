// Stand-in for CUDA's <cuda_runtime_api.h> in the host emulation: see
// ../cuda_shim.h.
#include "tests/cuda_emulation/cuda_shim.h"
