"""Training where users are: Keras ``mixed_float16`` with a LossScaleOptimizer,
``mixed_bfloat16``, and ``tf_keras`` (Keras 2) ``fit``, with the wrapper and
with the override. Learned box offsets make the boxes gradient run, a conv in
front of the crop makes the image gradient run.

Each configuration runs in its own process: the global dtype policy and the
override are process-wide.
"""

from __future__ import annotations

import importlib.util

import pytest
from helpers import describe_proc, run_python

SCRIPT = """
import sys
import numpy as np
import tensorflow as tf

kmod, policy, mode = {kmod!r}, {policy!r}, {mode!r}
if kmod == "tf_keras":
    import tf_keras as keras
else:
    import keras
import crop_and_resize_grad as crg
from crop_and_resize_grad import gradients, override

calls = {{"image": 0, "boxes": 0}}
def counting(name, real):
    def f(*a, **k):
        calls[name] += 1
        return real(*a, **k)
    return f
for module in (gradients, override):
    module.crop_and_resize_grad_image = counting("image", module.crop_and_resize_grad_image)
    module.crop_and_resize_grad_boxes = counting("boxes", module.crop_and_resize_grad_boxes)

keras.mixed_precision.set_global_policy(policy)
if mode == "override":
    crg.override_gradient()


class RoiHead(keras.layers.Layer):
    def build(self, input_shape):
        self.offset = self.add_weight(name="offset", shape=(4,), initializer="zeros")

    def call(self, inputs):
        image, boxes = inputs
        boxes = tf.cast(boxes, tf.float32) + tf.cast(self.offset, tf.float32)
        box_ind = tf.range(tf.shape(boxes)[0])
        if mode == "wrapper":
            crops = crg.crop_and_resize(image, boxes, box_ind, [6, 6])
        else:
            if image.dtype == tf.bfloat16:  # TF's CropAndResize takes no bfloat16
                image = tf.cast(image, tf.float32)
            crops = tf.image.crop_and_resize(image, boxes, box_ind, [6, 6])
        return tf.cast(crops, self.compute_dtype)


images_in = keras.Input((16, 16, 3))
boxes_in = keras.Input((4,))
x = keras.layers.Conv2D(4, 3, padding="same")(images_in)
x = RoiHead()([x, boxes_in])
x = keras.layers.Flatten()(x)
logits = keras.layers.Dense(3, dtype="float32")(x)
model = keras.Model([images_in, boxes_in], logits)
opt = keras.optimizers.SGD(0.05)
if policy == "mixed_float16":
    opt = keras.mixed_precision.LossScaleOptimizer(opt)
model.compile(opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

rng = np.random.default_rng(0)
n = 32
images = rng.standard_normal((n, 16, 16, 3)).astype(np.float32)
y1, x1 = rng.uniform(0, 0.5, n), rng.uniform(0, 0.5, n)
boxes = np.stack([y1, x1, y1 + 0.4, x1 + 0.4], 1).astype(np.float32)
labels = rng.integers(0, 3, n)
hist = model.fit((images, boxes), labels, batch_size=8, epochs=2, verbose=0)
losses = hist.history["loss"]
offset = [w for w in model.weights if "offset" in w.name][0].numpy()
print("losses", losses, "offset", offset, "calls", calls)
assert np.all(np.isfinite(losses)), losses
assert np.all(np.isfinite(offset)) and np.any(offset != 0), offset
assert calls["image"] > 0 and calls["boxes"] > 0, calls
print("trained")
"""

HAVE_TF_KERAS = importlib.util.find_spec("tf_keras") is not None


@pytest.mark.parametrize("mode", ["wrapper", "override"])
@pytest.mark.parametrize(
    "kmod,policy",
    [
        ("keras", "mixed_float16"),
        ("keras", "mixed_bfloat16"),
        ("tf_keras", "mixed_float16"),
        ("tf_keras", "float32"),
    ],
)
def test_fit(kmod, policy, mode):
    if kmod == "tf_keras" and not HAVE_TF_KERAS:
        pytest.skip("tf_keras is not installed (pip install tf_keras==2.21.*)")
    proc = run_python(SCRIPT.format(kmod=kmod, policy=policy, mode=mode), timeout=600)
    assert proc.returncode == 0 and "trained" in proc.stdout, describe_proc(proc)
