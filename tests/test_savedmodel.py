"""A SavedModel that uses our op saves, and reloads in a fresh process after
``import crop_and_resize_grad`` with identical results."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from helpers import TESTS_DIR, describe_proc
from support.cases import random_boxes

B, H, W, D, N, CROP = 2, 9, 10, 3, 5, [4, 4]


class RoiModule(tf.Module):
    def __init__(self, crg):
        super().__init__()
        self.crg = crg
        self.scale = tf.Variable(1.5)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, *CROP, D], tf.float32),
            tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def grad_image(self, grads, boxes, box_ind):
        """Our op, called directly."""
        return self.crg.crop_and_resize_grad_image(
            self.scale * grads, boxes, box_ind, [B, H, W, D], T=tf.float64
        )

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, H, W, D], tf.float32),
            tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def image_gradient(self, image, boxes, box_ind):
        """A gradient of tf.image.crop_and_resize, traced with the override (our op)."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = tf.reduce_sum(tf.image.crop_and_resize(image, boxes, box_ind, CROP) ** 2)
        return tape.gradient(loss, image)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, H, W, D], tf.float32),
            tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def crop(self, image, boxes, box_ind):
        """The wrapper; its custom gradient is saved with it."""
        return self.crg.crop_and_resize(image, boxes, box_ind, CROP)


RELOAD_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf

path, inputs_path, out_path = sys.argv[1:4]
try:
    tf.saved_model.load(path)
    loaded_without = "loaded"
except Exception as e:  # the op is not registered before the import
    loaded_without = type(e).__name__ + ": " + str(e).splitlines()[0][:200]
print("without import:", loaded_without)
assert loaded_without != "loaded"

import crop_and_resize_grad as crg

m = tf.saved_model.load(path)
d = np.load(inputs_path)
image = tf.constant(d["image"])
with tf.GradientTape() as tape:
    tape.watch(image)
    crop = m.crop(image, d["boxes"], d["box_ind"])
    loss = tf.reduce_sum(crop ** 2)
np.savez(
    out_path,
    grad_image=m.grad_image(d["grads"], d["boxes"], d["box_ind"]).numpy(),
    image_gradient=m.image_gradient(d["image"], d["boxes"], d["box_ind"]).numpy(),
    crop=crop.numpy(),
    crop_gradient=tape.gradient(loss, image).numpy(),
)
print("ok")
"""


def test_savedmodel_roundtrip_in_fresh_process(crg, rng, tmp_path):
    inputs = {
        "grads": rng.standard_normal([N, *CROP, D]).astype(np.float32),
        "image": rng.standard_normal([B, H, W, D]).astype(np.float32),
        "boxes": random_boxes(rng, N, "mixed"),
        "box_ind": rng.integers(0, B, N).astype(np.int32),
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    module = RoiModule(crg)
    args = (inputs["boxes"], inputs["box_ind"])
    with crg.gradient_override():  # traced (and saved) with our gradient
        expected = {
            "grad_image": module.grad_image(inputs["grads"], *args).numpy(),
            "image_gradient": module.image_gradient(inputs["image"], *args).numpy(),
        }
        tf.saved_model.save(module, str(tmp_path / "model"))
    image = tf.constant(inputs["image"])
    with tf.GradientTape() as tape:
        tape.watch(image)
        crop = module.crop(image, *args)
        loss = tf.reduce_sum(crop**2)
    expected["crop"] = crop.numpy()
    expected["crop_gradient"] = tape.gradient(loss, image).numpy()

    graph_ops = {
        op.type for op in module.image_gradient.get_concrete_function().graph.get_operations()
    }
    assert crg.OP_NAME in graph_ops

    script = tmp_path / "reload.py"
    script.write_text(RELOAD_SCRIPT)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "model"),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "out.npz"),
        ],
        cwd=TESTS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, describe_proc(proc)
    assert "not registered" in proc.stdout, proc.stdout  # without the import
    got = np.load(tmp_path / "out.npz")
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        assert got[key].tobytes() == value.tobytes(), key
