"""Smoke test of an installed wheel (run by scripts/wheel_check.sh inside a
fresh venv with TensorFlow but no compiler or CMake on PATH)."""

from __future__ import annotations

import os
import shutil
import sys

import crop_and_resize_grad as crg
import numpy as np
import tensorflow as tf


def main() -> int:
    tools = [t for t in ("cc", "gcc", "g++", "c++", "clang", "cmake", "nvcc") if shutil.which(t)]
    assert not tools, f"build tools on PATH: {tools}"
    here = os.path.dirname(os.path.abspath(crg.__file__))
    assert here.startswith(sys.prefix), f"imported {here}, not from the venv {sys.prefix}"
    assert not [n for n in os.listdir(here) if n.startswith("_kernels")], "the wheel holds _kernels"

    rng = np.random.default_rng(0)
    n, size = 64, [2, 9, 11, 5]
    grads = rng.standard_normal((n, 4, 3, size[3])).astype(np.float32)
    boxes = rng.uniform(-0.2, 1.2, (n, 4)).astype(np.float32)
    box_ind = rng.integers(0, size[0], n).astype(np.int32)
    for method in crg.METHODS:
        ours = crg.crop_and_resize_grad_image(grads, boxes, box_ind, size, tf.float32, method)
        tf.config.experimental.enable_op_determinism()
        theirs = tf.raw_ops.CropAndResizeGradImage(
            grads=grads, boxes=boxes, box_ind=box_ind, image_size=size, T=tf.float32, method=method
        )
        assert ours.numpy().tobytes() == theirs.numpy().tobytes(), method

    image = tf.constant(rng.standard_normal((2, 9, 11, 5)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(image)
        with crg.gradient_override():
            loss = tf.reduce_sum(tf.image.crop_and_resize(image, boxes, box_ind, [4, 3]) ** 2)
            d_image = tape.gradient(loss, image)
    assert d_image.shape == image.shape and np.isfinite(d_image.numpy()).all()
    print(f"wheel smoke test passed: {here}, TensorFlow {tf.__version__}, {crg.build_info()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
