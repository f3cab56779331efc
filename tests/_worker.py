"""Runs the op in a fresh process (for thread-count / no-determinism tests).

usage: python _worker.py THREADS REPEATS DETERMINISM IN1.npz OUT1.npz [IN2.npz OUT2.npz ...]

INPUT.npz holds grads, boxes, box_ind, image_size and `configs`, an array of
"dtype:method" strings. THREADS is TF's intra-op thread count (0: default).
DETERMINISM is 1 to call enable_op_determinism() first. Every config is run
REPEATS times; OUTPUT.npz gets, per config, the raw bytes of the first result
(as uint8) and a flag saying whether all repeats were bitwise identical.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    threads, repeats, determinism = (int(a) for a in sys.argv[1:4])
    files = sys.argv[4:]
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if int(determinism):
        tf.config.experimental.enable_op_determinism()
    import crop_and_resize_grad as crg

    for inp, outp in zip(files[0::2], files[1::2]):
        data = np.load(inp)
        args = (data["grads"], data["boxes"], data["box_ind"], data["image_size"])
        results = {}
        for config in data["configs"]:
            dtype, method = str(config).split(":")
            outs = [
                crg.crop_and_resize_grad_image(*args, T=tf.as_dtype(dtype), method=method).numpy()
                for _ in range(repeats)
            ]
            first = outs[0].tobytes()
            results[f"{config}:bytes"] = np.frombuffer(first, np.uint8)
            results[f"{config}:repeatable"] = np.array(all(o.tobytes() == first for o in outs))
        results["intra_op_threads"] = np.array(
            tf.config.threading.get_intra_op_parallelism_threads()
        )
        np.savez(outp, **results)
    print("ok")


if __name__ == "__main__":
    main()
