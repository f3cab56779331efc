"""Bad-input fuzzing: random ranks, shapes and values for all four inputs
(NaN/Inf boxes, out-of-range indices, negative and huge sizes, empty tensors,
wrong dtypes, Python lists and scalars), eagerly and in tf.functions with known
and with unknown input shapes.

Every call must either succeed with the right shape and dtype, or raise a
tf.errors.OpError (TypeError/ValueError are accepted too: argument conversion
and the shape function at graph construction). It must never crash. The cases
run in long-lived worker subprocesses that read cases from a pipe; a worker
that dies (or hangs) fails the test with the case printed, and is restarted.

A model of the op's validation predicts each case's outcome when all inputs
come with the op's own dtypes: a valid case must succeed (ResourceExhausted is
accepted for outputs too large to allocate); an invalid one must fail (never a
silent result), with OutOfRangeError when box_ind is the only problem and
InvalidArgumentError when non-finite boxes are.

Besides the image gradient, a share of the cases runs the boxes gradient
(crop_and_resize_grad_boxes, with an image of the shape image_size names, or
a random one) and the wrapper crop_and_resize forward plus backward (both
gradients; TF's forward on huge boxes would crash the process without the
wrapper's clamp). The boxes op has its own outcome model; the wrapper's
outcome is whatever TF's forward and our gradients say, but never a crash.

CRG_FUZZ_PROFILE=long runs 5000 cases from a random seed (printed);
CRG_FUZZ_SEED=S fixes the seed. To look at one case:
    PYTHONPATH=python python3 tests/test_fuzz_bad_inputs.py --show SEED INDEX
"""

from __future__ import annotations

import math
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

PROFILE = os.environ.get("CRG_FUZZ_PROFILE", "ci")
NUM_CASES = {"ci": 300, "long": 5000}[PROFILE]
SEED = int(os.environ.get("CRG_FUZZ_SEED", "20240611" if PROFILE == "ci" else "0")) or int(
    time.time()
)
NUM_WORKERS = int(os.environ.get("CRG_FUZZ_WORKERS", "2"))
CASE_TIMEOUT_S = 120.0

SUPPORTED_T = ("float16", "bfloat16", "float32", "float64")
METHODS = ("bilinear", "nearest")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Outputs above this many bytes count as "cannot be allocated"; valid cases
# never produce outputs between 64 MiB and this (they are shrunk), so a run
# never allocates gigabytes.
UNALLOCATABLE_BYTES = 2**44
MAX_ALLOCATED_BYTES = 64 << 20
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


# ----------------------------------------------------------------------------
# Case generation (NumPy only, so the parent never needs TensorFlow).


def _dim(rng, small_only=False):
    r = rng.random()
    if r < 0.15 or small_only:
        return int(rng.choice([0, 1, 1, 2, 3, 4]))
    if r < 0.9:
        return int(rng.integers(0, 8))
    return int(rng.choice([9, 16, 33, 100]))


def _random_shape(rng, rank):
    shape = [_dim(rng) for _ in range(rank)]
    while math.prod(shape) > 50_000:
        shape[int(np.argmax(shape))] //= 4
    return shape


def _box_values(rng, n):
    kinds = rng.integers(0, 10, size=(n, 4))
    vals = rng.uniform(-0.2, 1.2, size=(n, 4))
    vals = np.where(kinds == 1, rng.uniform(-5, 6, size=(n, 4)), vals)
    special = np.array([np.nan, -np.nan, np.inf, -np.inf, 3e38, -3e38, 1e30, 1e-40, -0.0, 0.0, 1.0])
    vals = np.where(kinds == 2, rng.choice(special, size=(n, 4)), vals)
    return vals


def _image_size_values(rng, valid_bias):
    palette = [0, 1, 2, 3, 5, 8, -1, -7, INT32_MIN, INT32_MAX, 2**20, 2**30, 65537]
    if rng.random() < valid_bias:
        return [int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9)), 1]
    return [
        int(rng.choice(palette)) if rng.random() < 0.5 else int(rng.integers(0, 6))
        for _ in range(4)
    ]


def make_case(seed, index):
    """The index-th case of the run with this seed (a dict of plain values)."""
    with np.errstate(all="ignore"):
        return _make_case(np.random.default_rng([seed, index]))


def _make_case(rng):
    consistent = rng.random() < 0.65  # shapes that agree with each other
    n = _dim(rng)
    ch, cw = (_dim(rng, small_only=True) or 1), (_dim(rng, small_only=True) or 1)
    if rng.random() < 0.1:
        ch, cw = _dim(rng), _dim(rng)  # including zero crop sizes
    image_size = _image_size_values(rng, 0.8 if consistent else 0.3)
    if consistent:
        depth = image_size[3] = int(rng.choice([0, 1, 2, 3, 5]))
        if rng.random() < 0.06:  # an output far too large to allocate
            image_size[1] = image_size[2] = int(rng.choice([2**26, 2**30, INT32_MAX]))
            depth = image_size[3] = max(depth, 1)
    else:
        depth = _dim(rng)

    def shape_for(rank, good):
        return (
            good
            if rank == len(good) and (consistent or rng.random() < 0.5)
            else (_random_shape(rng, rank))
        )

    def rank_for(good):
        return good if rng.random() < (0.95 if consistent else 0.6) else int(rng.integers(0, 6))

    grads_shape = shape_for(rank_for(4), [n, ch, cw, depth])
    boxes_shape = shape_for(rank_for(2), [n, 4])
    box_ind_shape = shape_for(rank_for(1), [n])
    if math.prod(grads_shape) > 200_000:
        grads_shape = [1] * len(grads_shape)

    grads = rng.standard_normal(grads_shape).astype(np.float32)
    if grads.size and rng.random() < 0.1:
        grads.flat[rng.integers(0, grads.size)] = rng.choice([np.nan, np.inf, -np.inf, 3e38])
    boxes = _box_values(rng, math.prod(boxes_shape) // 4 + 1).reshape(-1)[: math.prod(boxes_shape)]
    if rng.random() < 0.6:  # mostly finite boxes, so box_ind checks get reached
        boxes = np.where(np.isfinite(boxes), boxes, 0.5)
    boxes = boxes.astype(np.float32).reshape(boxes_shape)
    batch = image_size[0]
    hi = max(batch, 1)
    box_ind = rng.integers(0, hi, size=box_ind_shape).astype(np.int64)
    if box_ind.size and rng.random() < 0.2:
        box_ind.flat[rng.integers(0, box_ind.size)] = rng.choice(
            [-1, batch, batch + 1, INT32_MIN, INT32_MAX]
        )
    box_ind = box_ind.astype(np.int32)
    image_size = np.array(image_size, np.int32)
    if rng.random() < 0.1:  # image_size of another shape
        image_size = np.resize(image_size, _random_shape(rng, int(rng.integers(0, 3))))

    case = {
        "grads": grads,
        "boxes": boxes,
        "box_ind": box_ind,
        "image_size": image_size,
        "T": str(rng.choice(SUPPORTED_T)),
        "method": str(rng.choice(METHODS)),
        "mode": str(rng.choice(["eager", "eager", "function", "function_unknown_shapes"])),
    }
    _shrink_allocatable(case)
    case["op"] = str(rng.choice(["image", "image", "boxes", "wrapper"]))
    size = case["image_size"]
    if (
        isinstance(size, np.ndarray)
        and size.shape == (4,)
        and min(size) >= 0
        and math.prod(int(v) for v in size) <= 100_000
        and rng.random() < 0.8
    ):
        image_shape = [int(v) for v in size]
    else:
        image_shape = shape_for(rank_for(4), [min(int(batch), 3), 4, 5, depth])
        image_shape = [max(0, int(v)) for v in image_shape]
        if math.prod(image_shape) > 100_000:
            image_shape = [1] * len(image_shape)
    case["image"] = rng.standard_normal(image_shape).astype(np.float32)
    # Some inputs with other types: wrong dtypes, Python lists and scalars.
    r = rng.random()
    if r < 0.04:
        case["T"] = str(rng.choice(["int32", "uint8", "complex64", "string"]))
    elif r < 0.07:
        case["method"] = str(rng.choice(["bicubic", "", "BILINEAR"]))
    elif r < 0.15:
        key = str(rng.choice(["grads", "boxes", "box_ind", "image_size"]))
        value = case[key]
        case[key] = rng.choice(
            [
                lambda v: v.tolist(),
                lambda v: v.astype(np.float64),
                lambda v: v.astype(np.int64),
                lambda v: v.astype(np.float16),
                lambda v: v.reshape(-1)[0].item() if v.size else 3,
            ]
        )(value)
    return case


def _shrink_allocatable(case):
    """Keeps valid outputs small: sizes between MAX_ALLOCATED_BYTES and
    UNALLOCATABLE_BYTES would really be allocated (and written)."""
    size = case["image_size"]
    if not (isinstance(size, np.ndarray) and size.dtype == np.int32 and size.shape == (4,)):
        return
    vals = [int(v) for v in size]
    if min(vals) <= 0 or case["T"] not in ITEMSIZE:
        return
    nbytes = math.prod(vals) * ITEMSIZE[case["T"]]
    if MAX_ALLOCATED_BYTES < nbytes < UNALLOCATABLE_BYTES:
        # Either make it tiny or push it past what can be allocated.
        if nbytes % 2:
            vals[1], vals[2] = min(vals[1], 5), min(vals[2], 5)
            vals[0] = min(vals[0], 3)
        else:
            vals[1] = vals[2] = INT32_MAX
        case["image_size"] = np.array(vals, np.int32)


def _exact(value, dtype, rank=None):
    return (
        isinstance(value, np.ndarray)
        and value.dtype == dtype
        and (rank is None or value.ndim == rank)
    )


def expected_outcome(case):
    """('ok', shape), ('error', classes), or ('any', None) for inputs of other
    types (whatever TF's conversion makes of them, the call must not crash)."""
    if case.get("op") == "wrapper":
        return "any", None
    if case.get("op") == "boxes":
        return _expected_boxes_outcome(case)
    g, b, bi, s = (case[k] for k in ("grads", "boxes", "box_ind", "image_size"))
    if case["T"] not in SUPPORTED_T:
        return "error", ("TypeError",)
    if case["method"] not in METHODS:
        return "error", ("ValueError",)
    if not (
        _exact(g, np.float32)
        and _exact(b, np.float32)
        and _exact(bi, np.int32)
        and _exact(s, np.int32)
    ):
        return "any", None
    any_error = ("OpError", "TypeError", "ValueError")
    if g.ndim != 4 or g.shape[1] <= 0 or g.shape[2] <= 0:
        return "error", any_error
    if b.ndim != 2 or b.shape[1] != 4 or bi.ndim != 1:
        return "error", any_error
    n = b.shape[0]
    if bi.shape[0] != n or g.shape[0] != n or s.shape != (4,):
        return "error", any_error
    batch, height, width, depth = (int(v) for v in s)
    if height <= 0 or width <= 0 or batch < 0 or depth < 0 or depth != g.shape[3]:
        return "error", any_error
    elements = batch * height * width * depth
    if elements >= 2**63:
        return "error", any_error
    finite = bool(np.all(np.isfinite(b)))
    in_range = bool(np.all((bi >= 0) & (bi < batch)))
    too_large = elements * ITEMSIZE[case["T"]] >= UNALLOCATABLE_BYTES
    if too_large and not (finite and in_range):
        # The output is allocated before the box values are checked.
        return "error", ("ResourceExhaustedError", "InvalidArgumentError", "OutOfRangeError")
    if not finite and not in_range:
        return "error", ("InvalidArgumentError", "OutOfRangeError")
    if not finite:
        return "error", ("InvalidArgumentError",)
    if not in_range:
        return "error", ("OutOfRangeError",)
    if too_large:
        return "error", ("ResourceExhaustedError", "InvalidArgumentError")
    return "ok", [batch, height, width, depth]


def _expected_boxes_outcome(case):
    """The boxes op: the image gradient's checks with the image's shape in
    place of image_size; the output is [N, 4] float32."""
    g, b, bi, image = (case[k] for k in ("grads", "boxes", "box_ind", "image"))
    if case["T"] not in SUPPORTED_T:
        return "error", ("TypeError",)
    if case["method"] not in METHODS:
        return "error", ("ValueError",)
    if not (_exact(g, np.float32) and _exact(b, np.float32) and _exact(bi, np.int32)):
        return "any", None
    any_error = ("OpError", "TypeError", "ValueError")
    if g.ndim != 4 or g.shape[1] <= 0 or g.shape[2] <= 0:
        return "error", any_error
    if b.ndim != 2 or b.shape[1] != 4 or bi.ndim != 1:
        return "error", any_error
    n = b.shape[0]
    if bi.shape[0] != n or g.shape[0] != n or image.ndim != 4:
        return "error", any_error
    batch, height, width, depth = image.shape
    if height <= 0 or width <= 0 or depth != g.shape[3]:
        return "error", any_error
    finite = bool(np.all(np.isfinite(b)))
    in_range = bool(np.all((bi >= 0) & (bi < batch)))
    if not finite and not in_range:
        return "error", ("InvalidArgumentError", "OutOfRangeError")
    if not finite:
        return "error", ("InvalidArgumentError",)
    if not in_range:
        return "error", ("OutOfRangeError",)
    return "ok", [n, 4]


def describe(case):
    parts = []
    for k in ("grads", "boxes", "box_ind", "image_size"):
        v = case[k]
        if isinstance(v, np.ndarray):
            text = np.array2string(v.reshape(-1)[:12], precision=4, threshold=12)
            parts.append(f"{k}: {v.dtype}{list(v.shape)} {text}")
        else:
            parts.append(f"{k}: {type(v).__name__} {str(v)[:120]}")
    image = case.get("image")
    if image is not None:
        parts.append(f"image: {image.dtype}{list(image.shape)}")
    parts.append(
        f"op={case.get('op', 'image')} T={case['T']} method={case['method']!r} mode={case['mode']}"
    )
    return "\n    ".join(parts)


# ----------------------------------------------------------------------------
# The worker: reads pickled cases from stdin, runs them, answers on stdout.


def _send(stream, obj):
    data = pickle.dumps(obj, protocol=4)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _recv_exact(stream, n):
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _recv(stream):
    (length,) = struct.unpack("<Q", _recv_exact(stream, 8))
    return pickle.loads(_recv_exact(stream, length))


def run_case_in_this_process(case):
    import crop_and_resize_grad as crg
    import tensorflow as tf

    args = [case[k] for k in ("grads", "boxes", "box_ind", "image_size")]
    T, method, mode = case["T"], case["method"], case["mode"]
    op = case.get("op", "image")
    result = {}
    if op != "image":
        return _run_other_op(case, op, T, method, mode)
    try:
        result["converted_image_size"] = tf.convert_to_tensor(case["image_size"], tf.int32).numpy()
    except Exception:  # noqa: BLE001 - only informative
        result["converted_image_size"] = None
    try:
        if mode == "eager":
            out = crg.crop_and_resize_grad_image(*args, T=T, method=method)
        elif mode == "function":
            out = tf.function(lambda *a: crg.crop_and_resize_grad_image(*a, T=T, method=method))(
                *args
            )
        else:  # unknown shapes: the kernel's own checks, not the shape function
            tensors = [tf.convert_to_tensor(a) for a in args]
            spec = [tf.TensorSpec(None, t.dtype) for t in tensors]
            out = tf.function(
                lambda *a: crg.crop_and_resize_grad_image(*a, T=T, method=method),
                input_signature=spec,
            )(*tensors)
        result.update(status="ok", shape=[int(d) for d in out.shape], dtype=out.dtype.name)
        if out.shape.num_elements() <= 1_000_000:
            values = out.numpy().astype(np.float64)
            result["finite"] = bool(np.all(np.isfinite(values)))
    except tf.errors.OpError as e:
        result.update(status="error", type=type(e).__name__, message=str(e)[:300])
    except (TypeError, ValueError) as e:
        result.update(status="error", type=type(e).__name__, message=str(e)[:300])
    except Exception as e:  # noqa: BLE001 - reported as a failure by the parent
        result.update(status="unexpected", type=type(e).__name__, message=str(e)[:300])
    return result


def _image_of_type(image, T):
    import tensorflow as tf

    try:
        return tf.cast(image, tf.as_dtype(T)).numpy()
    except Exception:  # noqa: BLE001 - e.g. T=string
        return image  # an unsupported T: the float32 image, T is refused later


def _run_other_op(case, op, T, method, mode):
    """The boxes op (output [N, 4] float32) or the wrapper forward+backward."""
    import crop_and_resize_grad as crg
    import tensorflow as tf

    image = _image_of_type(case["image"], T)
    grads, boxes, box_ind = case["grads"], case["boxes"], case["box_ind"]
    result = {"converted_image_size": None}

    def boxes_op(g, i, b, n):
        if T not in SUPPORTED_T:
            raise TypeError(f"T={T}")
        return crg.crop_and_resize_grad_boxes(g, i, b, n, method=method)

    def wrapper(g, i, b, n):
        # Forward, then both gradients; grads' crop shape is the crop size.
        i = tf.convert_to_tensor(i)
        b = tf.convert_to_tensor(b)
        shape = tf.convert_to_tensor(g).shape
        crop = shape[1:3].as_list() if shape.rank == 4 and shape[1:3].is_fully_defined() else [2, 2]
        with tf.GradientTape() as tape:
            tape.watch([i, b])
            out = crg.crop_and_resize(i, b, n, crop, method=method if method in METHODS else "x")
            loss = tf.reduce_sum(tf.cast(out, tf.float32))
        grads_ = tape.gradient(loss, [i, b])
        return tf.concat(
            [tf.reshape(tf.cast(x, tf.float32), [-1]) for x in grads_ if x is not None]
            + [tf.reshape(tf.cast(out, tf.float32), [-1])],
            0,
        )

    fn = boxes_op if op == "boxes" else wrapper
    args = [grads, image, boxes, box_ind]
    try:
        if mode == "eager" or op == "wrapper" and mode != "function":
            out = fn(*args)
        elif mode == "function":
            out = tf.function(fn)(*args)
        else:
            tensors = [tf.convert_to_tensor(a) for a in args]
            spec = [tf.TensorSpec(None, t.dtype) for t in tensors]
            out = tf.function(fn, input_signature=spec)(*tensors)
        result.update(status="ok", shape=[int(d) for d in out.shape], dtype=out.dtype.name)
        values = out.numpy().astype(np.float64)
        result["finite"] = bool(np.all(np.isfinite(values)))
    except tf.errors.OpError as e:
        result.update(status="error", type=type(e).__name__, message=str(e)[:300])
    except (TypeError, ValueError) as e:
        result.update(status="error", type=type(e).__name__, message=str(e)[:300])
    except Exception as e:  # noqa: BLE001 - reported as a failure by the parent
        result.update(status="unexpected", type=type(e).__name__, message=str(e)[:300])
    return result


def worker_main():
    # The protocol owns the original stdout; anything else printed to fd 1
    # (by Python or C++) goes to stderr.
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import crop_and_resize_grad  # noqa: F401
    import tensorflow as tf  # noqa: F401 - load before the first case

    proto_in = sys.stdin.buffer
    _send(proto_out, {"status": "ready"})
    while True:
        try:
            case = _recv(proto_in)
        except EOFError:
            return
        _send(proto_out, run_case_in_this_process(case))


class Worker:
    """One worker subprocess; restarted by the pool after a death."""

    def __init__(self, log_dir, number):
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # TF's oneDNN (BFC) CPU allocator retries impossible allocations for
        # 10 s; the plain allocator fails at once.
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        env["PYTHONPATH"] = (
            os.path.dirname(os.path.abspath(__file__)) + os.pathsep + env.get("PYTHONPATH", "")
        )
        self.log_path = os.path.join(log_dir, f"worker{number}.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        ready = self._read(timeout=300)
        if ready != {"status": "ready"}:
            raise RuntimeError(f"worker did not start: {ready}\n{self.log_tail()}")

    def _read(self, timeout):
        fd = self.proc.stdout
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return {"status": "hang"}
        try:
            return _recv(fd)
        except (EOFError, struct.error, pickle.UnpicklingError):
            return {"status": "died", "returncode": self.proc.wait(timeout=30)}

    def run(self, case):
        try:
            _send(self.proc.stdin, case)
        except (BrokenPipeError, OSError):
            return {"status": "died", "returncode": self.proc.wait(timeout=30)}
        return self._read(CASE_TIMEOUT_S)

    def log_tail(self, chars=3000):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-chars:].decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def check_result(case, result):
    """None if the result is acceptable, else a message."""
    status = result["status"]
    if status in ("died", "hang"):
        return f"worker {status} (return code {result.get('returncode')})"
    if status == "unexpected":
        return f"unexpected exception {result['type']}: {result['message']}"
    kind, detail = expected_outcome(case)
    if status == "ok" and case.get("op", "image") != "image":
        if kind == "error":
            return f"succeeded (shape {result['shape']}) but expected one of {detail}"
        if kind == "ok" and (result["dtype"] != "float32" or result["shape"] != detail):
            return f"output {result['dtype']}{result['shape']}, expected float32{detail}"
        return None
    if status == "ok":
        if result["dtype"] != case["T"]:
            return f"output dtype {result['dtype']}, expected {case['T']}"
        size = result.get("converted_image_size")
        if size is not None and list(size) != result["shape"]:
            return f"output shape {result['shape']} but image_size {list(size)}"
        if kind == "error":
            return f"succeeded (shape {result['shape']}) but expected one of {detail}"
        if (
            kind == "ok"
            and case["T"] in ("float32", "float64")
            and np.all(np.isfinite(case["grads"]))
            and np.max(np.abs(case["grads"]), initial=0) < 1e6
            and result.get("finite") is False
        ):
            return "finite inputs gave a non-finite output"
        return None
    # An error.
    if kind == "ok":
        return f"valid input raised {result['type']}: {result['message']}"
    allowed = ("OpError", "TypeError", "ValueError") if detail is None else detail
    error_type = result["type"]
    is_op_error = error_type.endswith("Error") and error_type not in ("TypeError", "ValueError")
    if error_type in allowed or ("OpError" in allowed and is_op_error):
        return None
    return f"raised {error_type} ({result['message'][:200]}), expected one of {allowed}"


def run_cases(seed, indices, num_workers):
    """Runs the cases on a pool of workers. Returns (failures, counts)."""
    failures, counts = [], {}
    lock = threading.Lock()
    log_dir = tempfile.mkdtemp(prefix="crg_fuzz_")
    chunks = [indices[i::num_workers] for i in range(num_workers)]

    def feed(number, chunk):
        worker = Worker(log_dir, number)
        try:
            for index in chunk:
                case = make_case(seed, index)
                result = run_case_pipeline(worker, case)
                problem = check_result(case, result)
                with lock:
                    key = (case["mode"], result["status"], result.get("type", ""))
                    counts[key] = counts.get(key, 0) + 1
                    if problem:
                        failures.append((index, case, result, problem, worker.log_tail()))
                if result["status"] in ("died", "hang"):
                    worker.close()
                    worker = Worker(log_dir, number)
        finally:
            worker.close()

    def run_case_pipeline(worker, case):
        if worker.proc.poll() is not None:
            return {"status": "died", "returncode": worker.proc.returncode}
        result = worker.run(case)
        if result["status"] == "hang":
            worker.proc.kill()
        return result

    errors = []

    def guarded(number, chunk):
        try:
            feed(number, chunk)
        except Exception as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(i, c)) for i, c in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return failures, counts


def format_failures(seed, failures, limit=8):
    lines = [
        f"{len(failures)} bad case(s) (seed {seed}); reproduce one with\n"
        f"  PYTHONPATH=python python3 tests/test_fuzz_bad_inputs.py --show {seed} INDEX"
    ]
    for index, case, result, problem, log in sorted(failures, key=lambda f: f[0])[:limit]:
        lines.append(f"case {index}: {problem}\n    {describe(case)}")
        if result["status"] in ("died", "hang"):
            lines.append(f"    worker log tail:\n{log[-1500:]}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# The test.


def test_bad_inputs_never_crash():
    t0 = time.time()
    failures, counts = run_cases(SEED, list(range(NUM_CASES)), NUM_WORKERS)
    summary = ", ".join(f"{m}/{s}/{t or '-'}: {c}" for (m, s, t), c in sorted(counts.items()))
    print(f"\n{NUM_CASES} cases, seed {SEED}, {time.time() - t0:.1f} s: {summary}")
    assert sum(counts.values()) == NUM_CASES
    assert not failures, format_failures(SEED, failures)


def test_generator_covers_the_outcomes():
    """The drawn cases reach every branch of the validation model."""
    kinds = {}
    for index in range(NUM_CASES):
        kind, detail = expected_outcome(make_case(SEED, index))
        key = kind if kind != "error" else f"error:{'/'.join(detail)}"
        kinds[key] = kinds.get(key, 0) + 1
    for key in (
        "ok",
        "any",
        "error:OpError/TypeError/ValueError",
        "error:OutOfRangeError",
        "error:InvalidArgumentError",
    ):
        assert kinds.get(key, 0) >= 5, kinds
    assert kinds["ok"] >= NUM_CASES // 8, kinds


def test_worker_death_is_reported(monkeypatch):
    """A case that kills the worker is a failure that names the case, and the
    pool restarts the worker for the next case."""
    module = sys.modules[__name__]
    original = module.make_case

    def killer(seed, index):
        case = original(seed, index)
        if index == 1:
            case["mode"] = "die"  # run_case_in_this_process calls os._exit
        return case

    monkeypatch.setattr(module, "make_case", killer)
    failures, counts = module.run_cases(SEED, [0, 1, 2], 1)
    assert [f[0] for f in failures] == [1], failures
    assert "worker died" in failures[0][3]
    assert sum(counts.values()) == 3


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _orig = run_case_in_this_process

        def run_case_in_this_process(case):  # noqa: F811 - test hook for deaths
            if case["mode"] == "die":
                os._exit(134)
            return _orig(case)

        worker_main()
    elif len(sys.argv) == 4 and sys.argv[1] == "--show":
        c = make_case(int(sys.argv[2]), int(sys.argv[3]))
        print(describe(c))
        print("expected:", expected_outcome(c))
        print("result:", run_case_in_this_process(c))
    else:
        sys.exit("usage: test_fuzz_bad_inputs.py --worker | --show SEED INDEX")
