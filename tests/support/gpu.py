"""Device-array adapter for the CUDA launchers of ``_kernels``.

Shared by ``tests/gpu`` and ``benchmarks/bench_gpu.py``. Works with CuPy arrays
and PyTorch CUDA tensors; needs neither TensorFlow nor the
``crop_and_resize_grad`` package (``_kernels`` comes from ``support.kernels``).

Backend choice: ``$CRG_GPU_BACKEND`` (``cupy`` or ``torch``), else the first
usable of torch and CuPy.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np

from .kernels import load_kernels
from .numerics import DTYPES, HOST_DTYPE, ITEMSIZE, to_float64


# --------------------------------------------------------------------------- #
# Device array helpers (library-agnostic)
# --------------------------------------------------------------------------- #
def _is_torch(x):
    return type(x).__module__.startswith("torch")


_TORCH_TYPESTR = {
    "torch.float16": "float16",
    "torch.bfloat16": "bfloat16",
    "torch.float32": "float32",
    "torch.float64": "float64",
    "torch.int32": "int32",
    "torch.int16": "int16",
    "torch.uint16": "uint16",
    "torch.uint8": "uint8",
}
_CAI_TYPESTR = {
    "<f2": "float16",
    "<f4": "float32",
    "<f8": "float64",
    "<i4": "int32",
    "<i2": "int16",
    "<u2": "uint16",
    "|u1": "uint8",
    "<u1": "uint8",
}


def array_info(x):
    """(device pointer, shape tuple, dtype name, C-contiguous) of a CuPy array,
    a torch CUDA tensor or anything with ``__cuda_array_interface__``."""
    if _is_torch(x):
        if not x.is_cuda:
            raise ValueError("torch tensor is not on a CUDA device")
        return x.data_ptr(), tuple(x.shape), _TORCH_TYPESTR.get(str(x.dtype)), x.is_contiguous()
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is None:
        raise TypeError(f"not a device array: {type(x).__name__}")
    shape = tuple(int(s) for s in cai["shape"])
    dtype = _CAI_TYPESTR.get(cai["typestr"], cai["typestr"])
    strides = cai.get("strides")
    contiguous = True
    if strides is not None:
        itemsize = np.dtype(cai["typestr"]).itemsize
        expected = itemsize
        for dim, stride in zip(reversed(shape), reversed(strides)):
            if dim > 1 and stride != expected:
                contiguous = False
            expected *= dim
    return int(cai["data"][0]), shape, dtype, contiguous


def device_ptr(x):
    """Device address of a contiguous device array, or 0 for None."""
    if x is None:
        return 0
    ptr, _, _, contiguous = array_info(x)
    if not contiguous:
        raise ValueError("device array must be C-contiguous")
    return ptr


# --------------------------------------------------------------------------- #
# Backends
# --------------------------------------------------------------------------- #
_SPIN_SOURCE = r"""
extern "C" __global__ void crg_spin(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}
"""


class Backend:
    """What the adapter needs from an array library; subclasses for CuPy/torch."""

    name = "?"

    # Arrays -----------------------------------------------------------------
    def empty(self, shape, dtype, offset=0):
        """Uninitialized C-contiguous device array of ``dtype`` (a name from
        DTYPES, 'int32' or 'uint8'). ``offset`` > 0 returns a view that starts
        ``offset`` elements into a larger allocation: a deliberately
        misaligned pointer."""
        raise NotImplementedError

    def asarray(self, host, offset=0):
        """Copy of a NumPy array on the device (float32/int32/uint8/...);
        ``offset`` as in ``empty``."""
        raise NotImplementedError

    def to_numpy(self, x):
        """Host copy; bfloat16 comes back as uint16 bits (like grad_image_cpu)."""
        raise NotImplementedError

    def fill(self, x, value):
        raise NotImplementedError

    # Streams and timing -------------------------------------------------------
    def stream_ptr(self):
        raise NotImplementedError

    def synchronize(self):
        raise NotImplementedError

    def event(self):
        raise NotImplementedError

    def elapsed_ms(self, start, end):
        raise NotImplementedError

    def copy_bytes(self, dst, src, nbytes):
        """Device-to-device copy of ``nbytes`` on the current stream."""
        raise NotImplementedError

    def spin(self, cycles):
        """Keeps the current stream busy for about ``cycles`` GPU clocks; returns
        False when unavailable."""
        return False

    def device_info(self):
        raise NotImplementedError

    def stream_context(self):
        """Context manager that makes a fresh non-default stream current."""
        raise NotImplementedError


def _host_dtype(name):
    """NumPy storage dtype for a dtype name (bfloat16 -> uint16 bits)."""
    return HOST_DTYPE[name] if name in HOST_DTYPE else np.dtype(name)


def _storage_count(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self):
        import cupy as cp  # noqa: PLC0415

        self.cp = cp
        self._spin_kernel = None
        self._spin_failed = False

    @staticmethod
    def usable():
        import cupy as cp  # noqa: PLC0415

        if cp.cuda.runtime.getDeviceCount() <= 0:
            return False
        # CuPy compiles its elementwise kernels with NVRTC at first use; a
        # CuPy whose NVRTC cannot target this GPU or driver (e.g. cupy-cuda12x
        # next to a CUDA 13 stack) fails here instead of in every test, and
        # torch is used instead.
        x = cp.arange(8, dtype=cp.float32)
        x.fill(1.5)
        return float((cp.abs(x) * 2).sum().get()) == 24.0

    def _np_dtype(self, dtype):
        return _host_dtype(dtype)

    def empty(self, shape, dtype, offset=0):
        cp = self.cp
        dt = self._np_dtype(dtype)
        n = _storage_count(shape)
        if offset == 0:
            return cp.empty(tuple(shape), dtype=dt)
        flat = cp.empty(n + offset, dtype=dt)
        return flat[offset : offset + n].reshape(tuple(shape))

    def asarray(self, host, offset=0):
        host = np.ascontiguousarray(host)
        if offset == 0:
            return self.cp.asarray(host)
        out = self.empty(host.shape, host.dtype.name, offset)
        out[...] = self.cp.asarray(host)
        return out

    def to_numpy(self, x):
        return self.cp.asnumpy(x)

    def fill(self, x, value):
        x.fill(value)

    def stream_ptr(self):
        return int(self.cp.cuda.get_current_stream().ptr)

    def synchronize(self):
        self.cp.cuda.get_current_stream().synchronize()

    def event(self):
        e = self.cp.cuda.Event()
        e.record()
        return e

    def elapsed_ms(self, start, end):
        end.synchronize()
        return float(self.cp.cuda.get_elapsed_time(start, end))

    def copy_bytes(self, dst, src, nbytes):
        rt = self.cp.cuda.runtime
        rt.memcpyAsync(
            device_ptr(dst),
            device_ptr(src),
            int(nbytes),
            rt.memcpyDeviceToDevice,
            self.stream_ptr(),
        )

    def spin(self, cycles):
        if self._spin_failed:
            return False
        try:
            if self._spin_kernel is None:
                self._spin_kernel = self.cp.RawKernel(_SPIN_SOURCE, "crg_spin")
            self._spin_kernel((1,), (1,), (np.int64(cycles),))
            return True
        except Exception:  # NVRTC missing etc.: time without the spin
            self._spin_failed = True
            return False

    def device_info(self):
        cp = self.cp
        rt = cp.cuda.runtime
        dev = cp.cuda.Device().id
        props = rt.getDeviceProperties(dev)
        name = props.get("name", b"")
        name = name.decode() if isinstance(name, bytes) else str(name)
        return {
            "name": name,
            "compute_capability": f"{props.get('major')}.{props.get('minor')}",
            "multiprocessors": props.get("multiProcessorCount"),
            "memory_bytes": props.get("totalGlobalMem"),
            "l2_bytes": props.get("l2CacheSize"),
            "driver_version": _cuda_version_str(rt.driverGetVersion()),
            "cuda_runtime_version": _cuda_version_str(rt.runtimeGetVersion()),
            "library": f"cupy {cp.__version__}",
        }

    def stream_context(self):
        return self.cp.cuda.Stream(non_blocking=True)


class TorchBackend(Backend):
    name = "torch"

    def __init__(self):
        import torch  # noqa: PLC0415

        self.torch = torch
        self._dtypes = {
            "float16": torch.float16,
            "bfloat16": torch.bfloat16,
            "float32": torch.float32,
            "float64": torch.float64,
            "int32": torch.int32,
            "int16": torch.int16,
            "uint8": torch.uint8,
        }

    @staticmethod
    def usable():
        import torch  # noqa: PLC0415

        return torch.cuda.is_available()

    def empty(self, shape, dtype, offset=0):
        torch = self.torch
        dt = self._dtypes[dtype]
        n = _storage_count(shape)
        if offset == 0:
            return torch.empty(tuple(shape), dtype=dt, device="cuda")
        flat = torch.empty(n + offset, dtype=dt, device="cuda")
        return flat[offset : offset + n].view(tuple(shape))

    def asarray(self, host, offset=0):
        host = np.ascontiguousarray(host)
        if host.dtype == np.uint16:  # no uint16 arithmetic in older torch: carry as int16
            host = host.view(np.int16)
        t = self.torch.from_numpy(host.copy())
        if offset == 0:
            return t.to("cuda")
        out = self.empty(host.shape, host.dtype.name, offset)
        out.copy_(t)
        return out

    def to_numpy(self, x):
        torch = self.torch
        if x.dtype == torch.bfloat16:
            return x.view(torch.int16).cpu().numpy().view(np.uint16)
        return x.cpu().numpy()

    def fill(self, x, value):
        x.fill_(value)

    def stream_ptr(self):
        return int(self.torch.cuda.current_stream().cuda_stream)

    def synchronize(self):
        self.torch.cuda.current_stream().synchronize()

    def event(self):
        e = self.torch.cuda.Event(enable_timing=True)
        e.record()
        return e

    def elapsed_ms(self, start, end):
        end.synchronize()
        return float(start.elapsed_time(end))

    def copy_bytes(self, dst, src, nbytes):
        # uint8 views of contiguous buffers: torch issues a cudaMemcpyAsync.
        dst.view(-1)[: int(nbytes)].copy_(src.view(-1)[: int(nbytes)])

    def spin(self, cycles):
        sleep = getattr(self.torch.cuda, "_sleep", None)
        if sleep is None:
            return False
        sleep(int(cycles))
        return True

    def device_info(self):
        torch = self.torch
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        return {
            "name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "memory_bytes": props.total_memory,
            "l2_bytes": getattr(props, "L2_cache_size", None),
            "driver_version": _nvidia_smi_driver(),
            "cuda_runtime_version": torch.version.cuda,
            "library": f"torch {torch.__version__}",
        }

    def stream_context(self):
        return self.torch.cuda.stream(self.torch.cuda.Stream())


def _cuda_version_str(v):
    try:
        v = int(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{v // 1000}.{(v % 1000) // 10}"


def _nvidia_smi_driver():
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout.strip()
        return out.splitlines()[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


_BACKEND_CLASSES = {"torch": TorchBackend, "cupy": CupyBackend}
_BACKENDS_CACHE: dict = {}


def available_backends():
    """``({name: Backend}, reasons)`` for every usable library. Never raises."""
    if "result" in _BACKENDS_CACHE:
        return _BACKENDS_CACHE["result"]
    found, reasons = {}, []
    for name, cls in _BACKEND_CLASSES.items():
        try:
            if cls.usable():
                found[name] = cls()
            else:
                reasons.append(f"{name}: no CUDA device")
        except Exception as e:  # ImportError, CUDA runtime errors, ...
            reasons.append(f"{name}: {type(e).__name__}: {e}".splitlines()[0][:200])
    _BACKENDS_CACHE["result"] = (found, reasons)
    return found, reasons


def default_backend(prefer=None):
    """The backend to use (``$CRG_GPU_BACKEND`` or ``prefer`` first), or None."""
    found, _ = available_backends()
    order = [os.environ.get("CRG_GPU_BACKEND"), prefer, "torch", "cupy"]
    for name in order:
        if name and name in found:
            return found[name]
    return None


def backend_for(x):
    """The backend that owns device array ``x`` (falls back to the default)."""
    found, _ = available_backends()
    if _is_torch(x) and "torch" in found:
        return found["torch"]
    if type(x).__module__.startswith("cupy") and "cupy" in found:
        return found["cupy"]
    be = default_backend()
    if be is None:
        raise RuntimeError("no usable GPU array library (cupy or torch)")
    return be


def gpu_environment():
    """``(kernels, backends, reason)``: reason is None when CUDA tests can run."""
    kernels, why = load_kernels()
    if kernels is None:
        return None, {}, why
    if not getattr(kernels, "has_cuda", False):
        return kernels, {}, "_kernels was built without CUDA (has_cuda is False)"
    backends, reasons = available_backends()
    if not backends:
        return kernels, {}, "no GPU, or neither cupy nor torch usable: " + "; ".join(reasons)
    return kernels, backends, None


# --------------------------------------------------------------------------- #
# The adapter
# --------------------------------------------------------------------------- #
def _kernels_or_raise():
    kernels, why = load_kernels()
    if kernels is None:
        raise RuntimeError(why)
    if not getattr(kernels, "has_cuda", False):
        raise RuntimeError("_kernels was built without CUDA")
    return kernels


def _is_device(x):
    return _is_torch(x) or hasattr(x, "__cuda_array_interface__")


def _as_device(backend, x, dtype, keep):
    """x as a contiguous device array of ``dtype`` (converting NumPy inputs
    and wrong dtypes with the backend's library); ``keep`` holds temporaries."""
    if not _is_device(x):  # host data
        arr = backend.asarray(np.asarray(x, dtype=dtype))
        keep.append(arr)
        return arr
    _, _, have, contiguous = array_info(x)
    if have == dtype and contiguous:
        return x
    arr = backend.asarray(np.ascontiguousarray(backend.to_numpy(x)).astype(dtype))
    keep.append(arr)
    return arr


class GradImageLaunch:
    """A prepared launch: device inputs, output and scratch bound once, so
    ``launch()`` only enqueues the kernels (for benchmarks and repeat tests).

    ``out`` may be given (any contiguous device array of the right size and
    element width, e.g. from ``Backend.empty(..., offset=1)``); otherwise it
    is allocated.
    """

    def __init__(
        self,
        grads,
        boxes,
        box_ind,
        image_size,
        dtype="float32",
        method="bilinear",
        deterministic=False,
        out=None,
        backend=None,
    ):
        if dtype not in ITEMSIZE:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.kernels = _kernels_or_raise()
        self.backend = backend or backend_for(grads)
        self._keep = []
        self.grads = _as_device(self.backend, grads, "float32", self._keep)
        self.boxes = _as_device(self.backend, boxes, "float32", self._keep)
        self.box_ind = _as_device(self.backend, box_ind, "int32", self._keep)
        _, gshape, _, _ = array_info(self.grads)
        _, bshape, _, _ = array_info(self.boxes)
        if len(gshape) != 4:
            raise ValueError(f"grads must be 4-D, got shape {gshape}")
        self.grads_shape = [int(s) for s in gshape]
        self.num_boxes = int(bshape[0]) if bshape else 0
        self.image_size = [int(v) for v in image_size]
        self.dtype = dtype
        self.method = method
        self.deterministic = bool(deterministic)
        if out is None:
            out = self.backend.empty(self.image_size, dtype)
        else:
            _, oshape, odt, contiguous = array_info(out)
            size_ok = _storage_count(oshape) == _storage_count(self.image_size)
            width_ok = odt is None or _host_dtype(odt).itemsize == ITEMSIZE[dtype]
            if not (contiguous and size_ok and width_ok):
                raise ValueError(f"out {oshape} {odt} does not fit {self.image_size} {dtype}")
        self.out = out
        self.scratch_bytes = int(
            self.kernels.grad_image_scratch_bytes(
                self.grads_shape, self.num_boxes, self.image_size, dtype, method, self.deterministic
            )
        )
        # cupy / torch allocations are at least 256-byte aligned.
        self.scratch = (
            self.backend.empty([self.scratch_bytes], "uint8") if self.scratch_bytes else None
        )

    def launch(self, scratch_bytes=None):
        """Enqueues the kernels on the backend's current stream; returns ``out``."""
        self.kernels.grad_image_cuda(
            device_ptr(self.grads),
            device_ptr(self.boxes),
            device_ptr(self.box_ind),
            self.grads_shape,
            self.num_boxes,
            self.image_size,
            device_ptr(self.out),
            self.dtype,
            self.method,
            self.deterministic,
            device_ptr(self.scratch),
            self.scratch_bytes if scratch_bytes is None else int(scratch_bytes),
            self.backend.stream_ptr(),
        )
        return self.out

    __call__ = launch


def grad_image(
    grads,
    boxes,
    box_ind,
    image_size,
    dtype="float32",
    method="bilinear",
    deterministic=False,
    out=None,
    backend=None,
):
    """Image gradient on the GPU. Inputs: CuPy arrays or torch CUDA tensors
    (NumPy arrays are uploaded with the default backend). Enqueued on the
    current stream of the owning library, not synchronized. Returns the
    output device array (bfloat16: torch.bfloat16, or uint16 bits with CuPy)."""
    if backend is None:
        backend = backend_for(grads) if _is_device(grads) else default_backend()
    return GradImageLaunch(
        grads, boxes, box_ind, image_size, dtype, method, deterministic, out, backend
    ).launch()


def check_boxes(boxes, box_ind, batch, backend=None):
    """Runs check_boxes_cuda and returns the status (0 ok, 1 non-finite box,
    2 box_ind out of range); synchronizes the stream."""
    kernels = _kernels_or_raise()
    backend = backend or (backend_for(boxes) if _is_device(boxes) else default_backend())
    keep = []
    boxes = _as_device(backend, boxes, "float32", keep)
    box_ind = _as_device(backend, box_ind, "int32", keep)
    num_boxes = int(array_info(boxes)[1][0])
    status = backend.empty([1], "int32")
    backend.fill(status, -1)
    kernels.check_boxes_cuda(
        device_ptr(boxes),
        device_ptr(box_ind),
        num_boxes,
        int(batch),
        device_ptr(status),
        backend.stream_ptr(),
    )
    backend.synchronize()
    return int(backend.to_numpy(status)[0])


# --------------------------------------------------------------------------- #
# Running cases (tests)
# --------------------------------------------------------------------------- #
class Gpu:
    """The loaded _kernels module and the default backend, with run helpers for
    ``support.cases.Case`` inputs (the CUDA tests)."""

    def __init__(self, kernels, backend, backends):
        self.k = kernels
        self.be = backend
        self.backends = backends

    def prefill(self, out, dtype, backend=None):
        """Fills an output with NaN so that untouched elements show up."""
        be = backend or self.be
        if array_info(out)[2] in ("uint16", "int16"):  # bfloat16 as raw bits
            be.fill(out, 0x7FC0)  # a bfloat16 NaN
        else:
            be.fill(out, float("nan"))

    def launch(
        self,
        case,
        dtype,
        method="bilinear",
        deterministic=False,
        grads_offset=0,
        out_offset=0,
        backend=None,
    ):
        """Prepared launch with inputs uploaded (grads possibly at an element
        offset) and a NaN-prefilled output (possibly at an element offset)."""
        be = backend or self.be
        grads = be.asarray(case.grads, offset=grads_offset)
        boxes = be.asarray(case.boxes)
        box_ind = be.asarray(case.box_ind)
        out = be.empty(case.image_size, dtype, offset=out_offset)
        self.prefill(out, dtype, be)
        return GradImageLaunch(
            grads, boxes, box_ind, case.image_size, dtype, method, deterministic, out, be
        )

    def run(self, case, dtype, method="bilinear", deterministic=False, **kw):
        """Host copy of the GPU result (raw: bfloat16 as uint16 bits)."""
        launch = self.launch(case, dtype, method, deterministic, **kw)
        out = launch()
        be = launch.backend
        be.synchronize()
        return be.to_numpy(out)

    def run64(self, case, dtype, method="bilinear", deterministic=False, **kw):
        return to_float64(self.run(case, dtype, method, deterministic, **kw), dtype)

    def cpu(self, case, dtype, method="bilinear"):
        return self.k.grad_image_cpu(
            case.grads, case.boxes, case.box_ind, list(case.image_size), dtype, method
        )

    def cpu64(self, case, dtype, method="bilinear"):
        return to_float64(self.cpu(case, dtype, method), dtype)
