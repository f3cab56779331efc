"""Worker process for the distribution tests.

usage: python _dist_worker.py mirrored OUT.npz
       python _dist_worker.py multiworker OUT.npz   (TF_CONFIG set by the caller)

Computes the all-reduced gradients of _dist_model's loss with the
CropAndResize gradient override on, and saves every local replica's copy.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "mirrored":
        # Two logical CPU devices; must happen before TF initializes its devices.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        raise SystemExit(f"unknown mode {mode}")

    import _dist_model
    import crop_and_resize_grad as crg
    from crop_and_resize_grad import override

    calls = []
    real = override.crop_and_resize_grad_image

    def counting(*args, **kwargs):  # counts the override's uses of our op (at trace time)
        calls.append(1)
        return real(*args, **kwargs)

    override.crop_and_resize_grad_image = counting
    crg.override_gradient()
    grads = _dist_model.strategy_gradients(strategy)
    result = {
        "replicas": np.array(strategy.num_replicas_in_sync),
        "override_calls": np.array(len(calls)),
    }
    for i, copies in enumerate(grads):
        for r, g in enumerate(copies):
            result[f"g{i}_r{r}"] = g
    np.savez(out, **result)
    print("ok", mode, strategy.num_replicas_in_sync, flush=True)


if __name__ == "__main__":
    main()
