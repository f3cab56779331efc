"""Exported inference graphs of models that use ``crg.crop_and_resize`` hold
only TF's builtin ops: a SavedModel saved with
``SaveOptions(experimental_custom_gradients=False)`` loads and runs in a
process that never imports this package, and the inference function converts
to TFLite with ``SELECT_TF_OPS``.

With the default options the SavedModel also stores the custom gradient,
whose graph holds this package's gradient ops: loading it then needs
``import crop_and_resize_grad`` first (checked here too).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import describe_proc
from support.cases import random_boxes

CROP = (5, 4)


class Detector(tf.Module):
    """A toy ROI head: crops with the wrapper, then a learned 1x1 mixing."""

    def __init__(self, crg):
        super().__init__()
        self.crg = crg
        self.kernel = tf.Variable(tf.random.stateless_normal([3, 2], seed=[1, 2]))

    @tf.function(
        input_signature=[
            tf.TensorSpec([2, 16, 12, 3], tf.float32),
            tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def serve(self, image, boxes, box_ind):
        crops = self.crg.crop_and_resize(image, boxes, box_ind, CROP)
        return tf.einsum("nhwc,cd->nhwd", crops, self.kernel)


LOAD_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf

path, inputs_path, out_path = sys.argv[1:4]
try:
    m = tf.saved_model.load(path)
except Exception as e:
    print("load failed:", type(e).__name__, str(e).splitlines()[0][:200])
    sys.exit(3)
d = np.load(inputs_path)
out = m.serve(tf.constant(d["image"]), tf.constant(d["boxes"]), tf.constant(d["box_ind"]))
assert "crop_and_resize_grad" not in sys.modules, "the package was imported"
np.save(out_path, out.numpy())
print("ok")
"""


def _inputs(rng):
    boxes = np.concatenate([random_boxes(rng, 9, "mixed"), [[-3e38, 0, 3e38, 1]]]).astype(
        np.float32
    )
    return {
        "image": rng.standard_normal([2, 16, 12, 3]).astype(np.float32),
        "boxes": boxes,
        "box_ind": rng.integers(0, 2, len(boxes)).astype(np.int32),
    }


def _load_in_fresh_process(tmp_path, model_dir):
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The package must not be importable by accident from the tests dir.
    return subprocess.run(
        [
            sys.executable,
            str(script),
            str(model_dir),
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npy"),
        ],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_savedmodel_without_custom_gradients_loads_without_package(crg, rng, tmp_path):
    inputs = _inputs(rng)
    np.savez(tmp_path / "in.npz", **inputs)
    module = Detector(crg)
    expected = module.serve(**{k: tf.constant(v) for k, v in inputs.items()}).numpy()
    ops = {op.type for op in module.serve.get_concrete_function().graph.get_operations()}
    assert not any(t.startswith("CropAndResizeGrad>") for t in ops), ops
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(module, str(tmp_path / "portable"), options=options)
    proc = _load_in_fresh_process(tmp_path, tmp_path / "portable")
    assert proc.returncode == 0 and "ok" in proc.stdout, describe_proc(proc)
    assert np.load(tmp_path / "out.npy").tobytes() == expected.tobytes()


def test_savedmodel_with_custom_gradients_needs_package(crg, rng, tmp_path):
    inputs = _inputs(rng)
    np.savez(tmp_path / "in.npz", **inputs)
    module = Detector(crg)
    tf.saved_model.save(module, str(tmp_path / "default"))
    proc = _load_in_fresh_process(tmp_path, tmp_path / "default")
    assert proc.returncode == 3, describe_proc(proc)
    assert "CropAndResizeGrad>" in proc.stdout or "not registered" in proc.stdout, proc.stdout
    # With the package imported first, it loads and its gradient is ours.
    loaded = tf.saved_model.load(str(tmp_path / "default"))
    image = tf.constant(inputs["image"])
    with tf.GradientTape() as tape:
        tape.watch(image)
        loss = tf.reduce_sum(loaded.serve(image, inputs["boxes"], inputs["box_ind"]) ** 2)
    assert tape.gradient(loss, image) is not None


def test_tflite_select_tf_ops(crg, rng):
    """The inference function converts with SELECT_TF_OPS (CropAndResize is a
    select op; the box clamp is builtins). Running it needs TFLite's Flex
    delegate, which the tensorflow-cpu 2.21 wheel's tf.lite.Interpreter does
    not link: then the run is skipped, saying so."""
    module = Detector(crg)
    concrete = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    model = converter.convert()
    assert b"FlexCropAndResize" in model or b"CropAndResize" in model
    assert b"CropAndResizeGrad>" not in model
    inputs = _inputs(rng)
    interpreter = tf.lite.Interpreter(model_content=model)
    try:
        interpreter.allocate_tensors()
    except RuntimeError as e:
        if "Flex delegate" in str(e) or "Select TensorFlow op" in str(e):
            pytest.skip(f"converted ({len(model)} bytes); no Flex delegate here: {str(e)[:120]}")
        raise
    out = interpreter.get_signature_runner()(**inputs)
    expected = module.serve(**{k: tf.constant(v) for k, v in inputs.items()}).numpy()
    np.testing.assert_allclose(list(out.values())[0], expected, rtol=1e-6, atol=1e-6)
