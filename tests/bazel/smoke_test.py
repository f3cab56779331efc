"""Smoke test of an op library built by Bazel (or CMake), and a comparison of two.

  smoke_test.py [smoke] LIB      load LIB with tf.load_op_library and check it
                                 against the float64 NumPy reference
                                 (tests/support/reference.py); the Bazel py_test runs this
  smoke_test.py dump LIB OUT.npz save the op's outputs on the fixed cases
  smoke_test.py compare A B      dump A and B in separate subprocesses (both
                                 register the same op name, so one process
                                 cannot load both) and require bitwise-equal
                                 results, also with CRG_CPU_ISA=baseline

Uses only TensorFlow, NumPy and tests/support/reference.py; not the Python package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "support"))  # for reference.py

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DTYPES = ("float32", "float64", "float16", "bfloat16")
METHODS = ("bilinear", "nearest")


def cases():
    """Fixed inputs: (name, grads, boxes, box_ind, image_size)."""
    rng = np.random.default_rng(20240613)
    out = []
    for name, (n, ch, cw, b, h, w, d) in {
        "small": (7, 5, 4, 2, 9, 11, 3),
        "wide_depth": (12, 3, 3, 3, 16, 13, 37),
        "crop_1x1": (9, 1, 1, 2, 8, 8, 5),
        "many_boxes": (300, 7, 7, 2, 20, 24, 16),
    }.items():
        grads = rng.standard_normal((n, ch, cw, d)).astype(np.float32)
        # Boxes partly outside [0, 1], some flipped, some degenerate.
        boxes = rng.uniform(-0.3, 1.3, size=(n, 4)).astype(np.float32)
        boxes[::5, 2] = boxes[::5, 0]
        boxes[1::7] = [0.0, 0.0, 1.0, 1.0]
        box_ind = rng.integers(0, b, size=n).astype(np.int32)
        out.append((name, grads, boxes, box_ind, np.array([b, h, w, d], np.int32)))
    return out


def _op(lib):
    import tensorflow as tf

    module = tf.load_op_library(os.path.abspath(lib))
    return tf, module.crop_and_resize_grad_crop_and_resize_grad_image


def run_all(lib):
    """{key: float64-or-raw-bits array} for every case, dtype and method."""
    tf, op = _op(lib)
    results = {}
    for name, grads, boxes, box_ind, size in cases():
        for method in METHODS:
            for dtype in DTYPES:
                y = op(
                    grads=grads,
                    boxes=boxes,
                    box_ind=box_ind,
                    image_size=size,
                    T=tf.as_dtype(dtype),
                    method=method,
                    deterministic=False,
                )
                results[f"{name}/{method}/{dtype}"] = y.numpy()
    return tf, op, results


def smoke(lib):
    import reference

    tf, op, results = run_all(lib)
    failures = []
    checked = 0
    for name, grads, boxes, box_ind, size in cases():
        for method in METHODS:
            ref = reference.grad_image_reference(grads, boxes, box_ind, size, method=method)
            scale = reference.grad_image_abs_scale(grads, boxes, box_ind, size, method=method)
            for dtype in DTYPES:
                key = f"{name}/{method}/{dtype}"
                got = results[key].astype(np.float64)
                if got.shape != ref.shape:
                    failures.append(f"{key}: shape {got.shape} != {ref.shape}")
                    continue
                # Final rounding to the output type (at most 2x, README) plus
                # float32 accumulation; float64 is exact to ~1e-15.
                rel = {
                    "float64": 1e-13,
                    "float32": 2.0**-23,
                    "float16": 2.0**-10,
                    "bfloat16": 2.0**-7,
                }[dtype]
                acc = 1e-13 if dtype == "float64" else 1e-5
                tiny = {"float16": 2.0**-23, "bfloat16": 1e-30}.get(dtype, 1e-30)
                tol = rel * np.abs(ref) + acc * scale + tiny
                err = np.abs(got - ref)
                if not np.all(err <= tol):
                    i = np.unravel_index(np.argmax(err - tol), err.shape)
                    failures.append(f"{key}: |got-ref|={err[i]:.3g} > tol {tol[i]:.3g} at {i}")
                checked += 1
    # Deterministic: a second run gives the same bits.
    _, _, again = run_all(lib)
    for key, y in results.items():
        if not np.array_equal(y.view(np.uint8), again[key].view(np.uint8)):
            failures.append(f"{key}: second run differs")
    # Bad input is an error, not a crash.
    try:
        op(
            grads=np.ones((1, 2, 2, 1), np.float32),
            boxes=np.array([[0, 0, np.nan, 1]], np.float32),
            box_ind=np.zeros(1, np.int32),
            image_size=np.array([1, 4, 4, 1], np.int32),
            T=tf.float32,
        )
        failures.append("NaN box did not raise")
    except tf.errors.InvalidArgumentError:
        pass
    checked += _smoke_boxes(tf, lib, failures)
    for f in failures:
        print("FAIL", f)
    print(
        f"{checked} outputs checked against the float64 reference, "
        f"{len(failures)} failure(s); library {lib}"
    )
    return 1 if failures else 0


def _smoke_boxes(tf, lib, failures):
    """The boxes-gradient op against the float64 reference, every image dtype;
    a NaN box is an error. Returns the number of outputs checked."""
    import reference

    op = tf.load_op_library(os.path.abspath(lib)).crop_and_resize_grad_crop_and_resize_grad_boxes
    checked = 0
    rng = np.random.default_rng(5)
    for name, grads, boxes, box_ind, size in cases():
        image = rng.standard_normal(size).astype(np.float32)
        for dtype in DTYPES:
            img = tf.cast(image, dtype)
            got = op(grads=grads, image=img, boxes=boxes, box_ind=box_ind).numpy()
            ref, scale = reference.grad_boxes_reference(
                grads, tf.cast(img, tf.float64).numpy(), boxes, box_ind, with_scale=True
            )
            tol = np.abs(ref) * 2.0**-24 + scale * 1e-13 + 1e-30
            if got.shape != ref.shape or not np.all(np.abs(got - ref) <= tol):
                failures.append(f"boxes {name}/{dtype}: not within one rounding of the reference")
            checked += 1
    try:
        op(
            grads=np.ones((1, 2, 2, 1), np.float32),
            image=np.ones((1, 4, 4, 1), np.float32),
            boxes=np.array([[0, 0, np.nan, 1]], np.float32),
            box_ind=np.zeros(1, np.int32),
        )
        failures.append("boxes: NaN box did not raise")
    except tf.errors.InvalidArgumentError:
        pass
    return checked


def dump(lib, out):
    _, _, results = run_all(lib)
    # bfloat16 has no NumPy dtype of its own in .npz: store raw bits.
    np.savez(
        out, **{k: v.view(np.uint16) if v.dtype.itemsize == 2 else v for k, v in results.items()}
    )
    return 0


def compare(lib_a, lib_b):
    """0 when both libraries give bitwise-equal outputs, at the widest ISA this
    CPU has and with the CPU kernel capped to baseline x86-64 (CRG_CPU_ISA)."""
    diff, total = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for isa in ("", "baseline"):
            env = dict(os.environ)
            env.pop("CRG_CPU_ISA", None)
            if isa:
                env["CRG_CPU_ISA"] = isa
            outs = []
            for i, lib in enumerate((lib_a, lib_b)):
                out = os.path.join(tmp, f"{isa or 'native'}_{i}.npz")
                subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "dump", lib, out],
                    check=True,
                    env=env,
                )
                outs.append(np.load(out))
            a, b = outs
            if sorted(a.files) != sorted(b.files):
                print(f"FAIL: different result sets ({isa or 'native ISA'})")
                return 1
            total += len(a.files)
            diff += [
                f"{k} ({isa or 'native ISA'})"
                for k in a.files
                if a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes()
            ]
    for k in diff:
        print("DIFFERENT", k)
    print(
        f"{total} outputs compared bitwise (native ISA and CRG_CPU_ISA=baseline), "
        f"{len(diff)} differ:\n  {lib_a}\n  {lib_b}"
    )
    return 1 if diff else 0


def main(argv):
    if len(argv) == 1 or argv[0] == "smoke":
        return smoke(argv[-1])
    if argv[0] == "dump" and len(argv) == 3:
        return dump(argv[1], argv[2])
    if argv[0] == "compare" and len(argv) == 3:
        return compare(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
