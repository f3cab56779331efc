"""Trains a small ROI-crop classifier with the gradient override, against TF's builtin.

    python -m crop_and_resize_grad.demo [--steps 150] [--out PATH.png] [--seed 0]

Synthetic data made in-process: 48x48 RGB noise images, one rectangle per
quadrant, each of one of three colours and one of two shapes (filled or
outline): six classes. Each object gets several jittered proposal boxes, so
ROIs overlap as in a detector's ROI head. The model is a small conv backbone
(stride 2, 24x24x32 features), ``tf.image.crop_and_resize`` of every ROI to
7x7, and a small conv+dense head that classifies the ROI. Model code is plain
TF/Keras: our image gradient comes in through ``crg.gradient_override()``.

It reports, and draws in a PNG (--out, default ./crop_and_resize_grad_demo.png):
  * TF's race on a race-prone input (10 calls, their sums) against our exact sum;
  * the float16 error of TF's half accumulation against ours;
  * the loss curves, and whether reruns from the same seed are bitwise identical;
  * the time per training step and of the image gradient op alone, with spread;
  * the agreement of the image gradient (dLoss/dfeatures) with TF's builtin, and
    held-out accuracy.
When stdout is not a terminal, training progress is one line per fifth of a run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import crop_and_resize_grad as crg  # noqa: E402

IMAGE = 48  # image side
QUAD = IMAGE // 2
PROPOSALS = 4  # jittered proposals per object
ROIS = 4 * PROPOSALS  # ROIs per image
CROP = 7
COLOURS = np.array([[0.9, 0.15, 0.1], [0.1, 0.8, 0.2], [0.15, 0.3, 0.95]], np.float32)
COLOUR_NAMES = ("red", "green", "blue")
SHAPES = ("filled", "outline")
NUM_CLASSES = len(COLOURS) * len(SHAPES)


# ----------------------------------------------------------------------------- data


def make_data(n: int, rng: np.random.Generator):
    """n images [n,48,48,3] float32, boxes [n,ROIS,4] normalized, labels [n,ROIS] int32."""
    images = rng.uniform(0.0, 0.35, (n, IMAGE, IMAGE, 3)).astype(np.float32)
    boxes = np.empty((n, ROIS, 4), np.float32)
    labels = np.empty((n, ROIS), np.int32)
    for i in range(n):
        for q in range(4):
            oy, ox = (q // 2) * QUAD, (q % 2) * QUAD
            h, w = rng.integers(9, QUAD - 2, 2)
            y0 = oy + rng.integers(1, QUAD - h)
            x0 = ox + rng.integers(1, QUAD - w)
            colour = rng.integers(len(COLOURS))
            shape = rng.integers(len(SHAPES))
            if shape == 0:
                images[i, y0 : y0 + h, x0 : x0 + w] = COLOURS[colour]
            else:
                t = 2
                images[i, y0 : y0 + t, x0 : x0 + w] = COLOURS[colour]
                images[i, y0 + h - t : y0 + h, x0 : x0 + w] = COLOURS[colour]
                images[i, y0 : y0 + h, x0 : x0 + t] = COLOURS[colour]
                images[i, y0 : y0 + h, x0 + w - t : x0 + w] = COLOURS[colour]
            # jittered proposals around the true box, in normalized [y1,x1,y2,x2]
            true = np.array([y0, x0, y0 + h - 1, x0 + w - 1], np.float64)
            jitter = rng.uniform(-2.0, 2.0, (PROPOSALS, 4))
            jitter[0] = 0.0
            sl = slice(q * PROPOSALS, (q + 1) * PROPOSALS)
            boxes[i, sl] = np.clip((true + jitter) / (IMAGE - 1), 0.0, 1.0)
            labels[i, sl] = colour * len(SHAPES) + shape
    return images, boxes, labels


# ----------------------------------------------------------------------------- model


def build_model(seed: int):
    keras.utils.set_random_seed(seed)
    L = keras.layers
    backbone = keras.Sequential(
        [
            keras.Input((IMAGE, IMAGE, 3)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        ],
        name="backbone",
    )
    head = keras.Sequential(
        [
            keras.Input((CROP, CROP, 32)),
            L.Conv2D(32, 3, activation="relu"),
            L.Flatten(),
            L.Dense(64, activation="relu"),
            L.Dense(NUM_CLASSES),
        ],
        name="head",
    )

    class RoiClassifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.head = head

        def classify(self, features, boxes):
            """ROI logits [B, ROIS, classes] from backbone features."""
            batch, rois = tf.shape(boxes)[0], tf.shape(boxes)[1]
            crops = tf.image.crop_and_resize(
                features,
                tf.reshape(boxes, [-1, 4]),
                tf.repeat(tf.range(batch), rois),
                [CROP, CROP],
            )
            return tf.reshape(self.head(crops), [batch, rois, NUM_CLASSES])

        def call(self, inputs):
            images, boxes = inputs
            return self.classify(self.backbone(images), boxes)

    model = RoiClassifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", BatchLoss()],
        # Neither TF's CropAndResize ops nor ours have XLA kernels; Keras's
        # jit_compile="auto" would pick XLA on a GPU machine.
        jit_compile=False,
    )
    model((tf.zeros([1, IMAGE, IMAGE, 3]), tf.zeros([1, ROIS, 4])))  # build
    return model


class BatchLoss(keras.metrics.Metric):
    """The loss of the last training batch (Keras's own ``loss`` log is the
    epoch's running mean)."""

    def __init__(self, name="batch_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.value.assign(self._loss(y_true, y_pred))

    def result(self):
        return keras.ops.copy(self.value)  # a tensor, not the variable

    def reset_state(self):
        self.value.assign(0.0)


class ProgressLines(keras.callbacks.Callback):
    """One plain line every `every` steps, for logs (Keras's bar rewrites one
    line with terminal codes at every step)."""

    def __init__(self, total: int, every: int):
        super().__init__()
        self.total, self.every = total, every

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        if step % self.every == 0 or step == self.total:
            print(
                f"    step {step}/{self.total}  loss {float(logs['batch_loss']):.4f}  "
                f"accuracy {float(logs['accuracy']):.3f}",
                flush=True,
            )


class LossRecorder(keras.callbacks.Callback):
    """Keras callback: the loss of every training step."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["batch_loss"]))


def train(data, args, override: bool, verbose: int):
    """One training run from args.seed; returns (model, recorder)."""
    images, boxes, labels = data
    model = build_model(args.seed)
    rec = LossRecorder()
    callbacks = [rec]
    if verbose and not sys.stdout.isatty():
        total = len(images) // args.batch
        callbacks.append(ProgressLines(total, every=max(1, total // 5)))
        verbose = 0
    # The registry is read when fit() traces its train function: the switch
    # must be in force around the first fit() of this model.
    with crg.gradient_override(enabled=override):
        model.fit(
            (images, boxes),
            labels,
            batch_size=args.batch,
            epochs=1,
            shuffle=False,
            verbose=verbose,
            callbacks=callbacks,
        )
    return model, rec


# ----------------------------------------------------------------------------- checks


def feature_gradient(model, images, boxes, labels, override: bool) -> np.ndarray:
    """dLoss/dfeatures (the gradient CropAndResize sends to its image) on one batch, eagerly."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    features = model.backbone(images)
    with crg.gradient_override(enabled=override):
        with tf.GradientTape() as tape:
            tape.watch(features)
            loss = loss_fn(labels, model.classify(features, boxes))
        return tape.gradient(loss, features).numpy()


def interleaved_times(pairs, repeats: int):
    """Seconds of each call of two callables, called alternately (ABBA...) so
    that load from other processes on the machine hits both alike."""
    times = ([], [])
    for fn in pairs:
        fn()  # warm up
    for i in range(repeats):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for j in order:
            t0 = time.perf_counter()
            pairs[j]()
            times[j].append(time.perf_counter() - t0)
    return [np.asarray(t) for t in times]


def step_times(m_ours, m_tf, data, args, repeats: int):
    """Seconds of each training step (the models' compiled Keras train
    functions, via train_on_batch), ours and TF's, interleaved."""
    images, boxes, labels = data
    n = len(images) // args.batch
    state = {"i": 0}

    def batch():
        i = state["i"] % n
        sl = slice(i * args.batch, (i + 1) * args.batch)
        return (images[sl], boxes[sl]), labels[sl]

    def ours():
        x, y = batch()
        with crg.gradient_override():  # in case Keras retraces
            m_ours.train_on_batch(x, y)

    def theirs():
        x, y = batch()
        with crg.gradient_override(enabled=False):
            m_tf.train_on_batch(x, y)
        state["i"] += 1

    return interleaved_times((ours, theirs), repeats)


def op_inputs(model, images, boxes):
    """Arguments of the image gradient op for this batch (random upstream grads)."""
    features = model.backbone(images)
    flat = tf.reshape(boxes, [-1, 4])
    ind = tf.repeat(tf.range(tf.shape(boxes)[0]), tf.shape(boxes)[1])
    grads = tf.random.stateless_normal(
        [flat.shape[0], CROP, CROP, features.shape[-1]], seed=[1, 2], dtype=tf.float32
    )
    return grads, flat, ind, features.shape.as_list()


def op_times(args_, repeats: int):
    """Seconds of each call of the image gradient op alone: ours, TF's (interleaved)."""
    grads, flat, ind, size = args_

    def ours():
        crg.crop_and_resize_grad_image(grads, flat, ind, size, T=tf.float32).numpy()

    def theirs():
        tf.raw_ops.CropAndResizeGradImage(
            grads=grads, boxes=flat, box_ind=ind, image_size=size, T=tf.float32
        ).numpy()

    return interleaved_times((ours, theirs), repeats)


def op_repeatability(args_, repeats: int):
    """Distinct results of the image gradient op over `repeats` calls: ours, TF's."""
    grads, flat, ind, size = args_
    ours = {
        crg.crop_and_resize_grad_image(grads, flat, ind, size, T=tf.float32).numpy().tobytes()
        for _ in range(repeats)
    }
    theirs = {
        tf.raw_ops.CropAndResizeGradImage(
            grads=grads, boxes=flat, box_ind=ind, image_size=size, T=tf.float32
        )
        .numpy()
        .tobytes()
        for _ in range(repeats)
    }
    return len(ours), len(theirs)


def race_check(repeats: int) -> dict:
    """The race demonstration: 20,000 boxes [0,0,1,1] on one 8x8 image,
    grads all ones: every pixel must get exactly 20,000. TF's CPU kernel (without
    op determinism) loses updates to its data race."""
    n = 20000
    grads = tf.ones([n, 8, 8, 1])
    boxes = tf.tile(tf.constant([[0.0, 0.0, 1.0, 1.0]]), [n, 1])
    ind = tf.zeros([n], tf.int32)
    size = [1, 8, 8, 1]
    out = {}
    for name, fn in (
        ("ours", lambda: crg.crop_and_resize_grad_image(grads, boxes, ind, size, T=tf.float64)),
        (
            "tf",
            lambda: tf.raw_ops.CropAndResizeGradImage(
                grads=grads, boxes=boxes, box_ind=ind, image_size=size, T=tf.float64
            ),
        ),
    ):
        results = [fn().numpy() for _ in range(repeats)]
        out[f"{name}_distinct"] = len({r.tobytes() for r in results})
        out[f"{name}_all_sums"] = [float(r.sum()) for r in results]
        sums = sorted({int(r.sum()) for r in results})
        out[f"{name}_sums"] = f"{sums[0]:,}" if len(sums) == 1 else f"{sums[0]:,} to {sums[-1]:,}"
    return out


RACE_EXACT = 20000 * 64  # 20,000 boxes, each adding 1 to every pixel of the 8x8 image


def half_errors() -> dict:
    """float16 output, 400 large overlapping boxes on one 8x8x4 image (crop
    14x14, grads U(0, 1)): the error of TF's kernel, which accumulates in half,
    and of ours, which accumulates in float32 and rounds once, relative to the
    largest value of a float64 result."""
    rng = np.random.default_rng(3)
    n = 400
    corner = rng.uniform(0.0, 0.2, (n, 2))
    boxes = np.concatenate([corner, corner + 0.8], axis=1).astype(np.float32)
    grads = rng.uniform(0.0, 1.0, (n, 14, 14, 4)).astype(np.float32)
    ind = np.zeros(n, np.int32)
    size = [1, 8, 8, 4]
    ref = crg.crop_and_resize_grad_image(grads, boxes, ind, size, T=tf.float64).numpy()
    ours = crg.crop_and_resize_grad_image(grads, boxes, ind, size, T=tf.float16).numpy()
    theirs = tf.raw_ops.CropAndResizeGradImage(
        grads=grads, boxes=boxes, box_ind=ind, image_size=size, T=tf.float16
    ).numpy()
    scale = float(np.max(np.abs(ref)))
    return {
        "ours": float(np.max(np.abs(ours.astype(np.float64) - ref))) / scale,
        "tf": float(np.max(np.abs(theirs.astype(np.float64) - ref))) / scale,
        "rounding": 2.0**-11,  # half of float16's epsilon: one final rounding
    }


def weights_diff(a, b) -> float:
    """0.0 when bitwise identical, else the max abs difference (inf if shapes differ)."""
    wa, wb = a.get_weights(), b.get_weights()
    if all(x.tobytes() == y.tobytes() for x, y in zip(wa, wb)):
        return 0.0
    return max(float(np.max(np.abs(x - y))) for x, y in zip(wa, wb))


def accuracy(model, data) -> float:
    images, boxes, labels = data
    logits = model.predict((images, boxes), batch_size=64, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == labels))


def diff_stats(a, b):
    """(max abs diff, max elementwise rel diff where |b| > 1e-3 max|b|, max|b|)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    big = np.abs(b) > 1e-3 * scale
    rel = float(np.max(diff[big] / np.abs(b[big]))) if big.any() else 0.0
    return float(np.max(diff)) if diff.size else 0.0, rel, scale


def plot(path, res, title):
    """The picture: TF's race against our exact sum, float16 error, the loss
    curves with the reruns, and the step times with their spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ours_c, tf_c = "tab:blue", "tab:orange"
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_race, ax_half), (ax_loss, ax_time) = axes

    race = res["race"]
    calls = np.arange(1, len(race["tf_all_sums"]) + 1)
    ax_race.axhline(RACE_EXACT, color="black", lw=1, ls=":", label=f"exact sum {RACE_EXACT:,}")
    ax_race.plot(
        calls,
        race["ours_all_sums"],
        "o",
        color=ours_c,
        ms=8,
        label=f"ours: {race['ours_distinct']} distinct result(s)",
    )
    ax_race.plot(
        calls,
        race["tf_all_sums"],
        "x",
        color=tf_c,
        ms=9,
        mew=2,
        label=f"TF: {race['tf_distinct']} distinct result(s)",
    )
    ax_race.set_xlabel("call")
    ax_race.set_ylabel("sum of the image gradient")
    ax_race.set_title("Race: 20,000 boxes [0,0,1,1] on one 8x8 image, 10 calls")
    ax_race.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    ax_race.legend(loc="best", fontsize=8)

    half = res["half"]
    bars = ax_half.bar(
        ["ours\n(float32 accumulator)", "TF\n(half accumulator)"],
        [half["ours"], half["tf"]],
        color=[ours_c, tf_c],
    )
    for bar, v in zip(bars, (half["ours"], half["tf"])):
        ax_half.annotate(
            f"{v:.1e}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom"
        )
    ax_half.axhline(
        half["rounding"], color="black", lw=1, ls=":", label="one float16 rounding (2^-11)"
    )
    ax_half.set_yscale("log")
    ax_half.set_ylabel("max error / max |gradient|")
    ax_half.set_title("float16 image gradient, 400 overlapping boxes")
    ax_half.legend(fontsize=8)

    steps = np.arange(1, len(res["loss_ours"]) + 1)
    mark = max(1, len(steps) // 12)
    for who, colour, line, rerun_colour, rerun_marker in (
        ("ours", ours_c, dict(ls="-", lw=2.5, alpha=0.7), "navy", "o"),
        ("tf", tf_c, dict(ls="--", lw=1.2), "saddlebrown", "x"),
    ):
        name = "ours (override on)" if who == "ours" else "TF (override off)"
        same = "bitwise identical" if res[f"det_{who}"] == 0 else "differs"
        ax_loss.plot(steps, res[f"loss_{who}"], color=colour, label=f"{name}, run 1", **line)
        ax_loss.plot(
            steps,
            res[f"loss_{who}2"],
            ls="none",
            marker=rerun_marker,
            ms=5,
            markevery=mark,
            color=rerun_colour,
            label=f"{name}, run 2 (same seed): {same}",
        )
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("training step")
    ax_loss.set_ylabel("batch loss")
    ax_loss.set_title(
        "Training loss; reruns from the same seed"
        + (
            "\n(ours and TF coincide: the image gradients are bitwise equal)"
            if res["same_grad"]
            else ""
        ),
        fontsize=10,
    )
    ax_loss.legend(fontsize=8)

    data = [
        1e3 * res["step_s"][0],
        1e3 * res["step_s"][1],
        1e3 * res["op_s"][0],
        1e3 * res["op_s"][1],
    ]
    names = ["train step\nours", "train step\nTF", "grad op\nours", "grad op\nTF"]
    box = ax_time.boxplot(data, showfliers=False, patch_artist=True, widths=0.6)
    ax_time.set_xticks(range(1, 5), names)
    for patch, colour in zip(box["boxes"], (ours_c, tf_c, ours_c, tf_c)):
        patch.set_facecolor(colour)
        patch.set_alpha(0.6)
    for i, d in enumerate(data, start=1):
        ax_time.annotate(
            f"{np.median(d):.2f} ms",
            (i, np.percentile(d, 75)),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax_time.set_yscale("log")
    ax_time.set_ylabel("ms (box: 25-75 %, line: median)")
    ax_time.set_title(
        "Time per call, ours and TF alternating\n"
        "(medians that differ less than the boxes' spread are noise)",
        fontsize=10,
    )

    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=150, help="training steps per run")
    p.add_argument("--out", default="crop_and_resize_grad_demo.png", help="PNG to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=16, help="images per step")
    p.add_argument("--timing-steps", type=int, default=40, help="timed training steps per gradient")
    p.add_argument(
        "--op-determinism",
        action="store_true",
        help="call tf.config.experimental.enable_op_determinism() first "
        "(TF's builtin kernel then runs single-threaded)",
    )
    args = p.parse_args(argv)
    if min(args.steps, args.batch, args.timing_steps) < 1:
        p.error("--steps, --batch and --timing-steps must be positive")
    return args


MATPLOTLIB_HINT = (
    "The demo draws its picture with matplotlib, which is not installed. Install it with\n"
    "  pip install 'crop_and_resize_grad[demo]'   (or: pip install matplotlib)"
)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import matplotlib  # noqa: F401  (checked before minutes of training)
    except ImportError:
        print(MATPLOTLIB_HINT, file=sys.stderr)
        return 1
    if args.op_determinism:
        tf.config.experimental.enable_op_determinism()
    t_start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    train_data = make_data(args.steps * args.batch, rng)
    test_data = make_data(128, rng)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    feat = QUAD
    print(
        f"crop_and_resize_grad demo: TF {tf.__version__}, {cores} CPU cores, seed {args.seed}, "
        f"op determinism {'on' if args.op_determinism else 'off'}\n"
        f"  {args.steps} steps x {args.batch} images x {ROIS} ROIs "
        f"({feat}x{feat}x32 features -> {CROP}x{CROP} crops), {NUM_CLASSES} classes "
        f"({'/'.join(COLOUR_NAMES)} x {'/'.join(SHAPES)})",
        flush=True,
    )

    print("\n[1/4] training, image gradient from crop_and_resize_grad (override on)", flush=True)
    m_ours, r_ours = train(train_data, args, override=True, verbose=1)
    print("[2/4] training, TF's builtin image gradient (override off)", flush=True)
    m_tf, r_tf = train(train_data, args, override=False, verbose=1)
    print("[3/4] repeat of [1/4] from the same seed", flush=True)
    m_ours2, r_ours2 = train(train_data, args, override=True, verbose=0)
    print("[4/4] repeat of [2/4] from the same seed", flush=True)
    m_tf2, r_tf2 = train(train_data, args, override=False, verbose=0)

    # Checks, first on the repeat runs' weights (before timing trains them on).
    det_ours = weights_diff(m_ours, m_ours2)
    det_tf = weights_diff(m_tf, m_tf2)
    acc_ours, acc_tf = accuracy(m_ours, test_data), accuracy(m_tf, test_data)

    # Gradient agreement on one held-out batch, at the initial weights (where
    # the gradient is large; after training it is tiny).
    images, boxes, labels = (x[: args.batch] for x in test_data)
    m_init = build_model(args.seed)
    g_ours = feature_gradient(m_init, images, boxes, labels, override=True)
    g_tf = feature_gradient(m_init, images, boxes, labels, override=False)
    abs_diff, rel_diff, scale = diff_stats(g_ours, g_tf)
    identical = g_ours.tobytes() == g_tf.tobytes()

    print(
        "[timing] training steps and the image gradient op, ours and TF's alternately", flush=True
    )
    step_s = step_times(m_ours2, m_tf2, train_data, args, repeats=args.timing_steps)
    step_ms = tuple(1e3 * float(np.median(t)) for t in step_s)
    op_args = op_inputs(m_ours, images, boxes)
    op_s = op_times(op_args, repeats=50)
    op_ms = tuple(1e3 * float(np.median(t)) for t in op_s)
    distinct = op_repeatability(op_args, repeats=20)
    race = race_check(repeats=10)
    half = half_errors()

    def spread(t):
        q1, q3 = np.percentile(1e3 * t, [25, 75])
        return f"[{q1:.2f}, {q3:.2f}]"

    def det_text(d):
        return "bitwise identical" if d == 0.0 else f"DIFFER (max abs diff {d:.3e})"

    print("\nImage gradient dLoss/dfeatures on one batch, ours vs TF's builtin:")
    print(
        f"  max abs diff {abs_diff:.3e}, max rel diff {rel_diff:.3e} "
        f"(max |grad| {scale:.3e}){'; bitwise identical' if identical else ''}"
    )
    print(
        f"Time per training step (median of {args.timing_steps} Keras train steps each, "
        "alternating):"
    )
    print(f"  override on  (ours) : {step_ms[0]:8.2f} ms  25-75 %: {spread(step_s[0])} ms")
    print(
        f"  override off (TF's) : {step_ms[1]:8.2f} ms  25-75 %: {spread(step_s[1])} ms"
        f"    on/off = {step_ms[0] / step_ms[1]:.2f} (differences within the spread are noise)"
    )
    print(
        f"  the image gradient op alone on one batch (median of 50): ours {op_ms[0]:.3f} ms, "
        f"TF's {op_ms[1]:.3f} ms (TF/ours = {op_ms[1] / op_ms[0]:.2f})"
    )
    print("Determinism, two training runs from the same seed (final weights):")
    print(f"  override on  (ours) : {det_text(det_ours)}")
    print(f"  override off (TF's) : {det_text(det_tf)}")
    print(
        f"  the op alone, 20 calls on one batch: ours {distinct[0]} distinct result(s), "
        f"TF's {distinct[1]}"
    )
    print(
        f"  the op alone, 10 calls on a race-prone input (20,000 boxes [0,0,1,1] on one 8x8 "
        f"image, grads 1; exact sum 1,280,000): ours {race['ours_distinct']} distinct "
        f"result(s), sums {race['ours_sums']}; TF's {race['tf_distinct']}, sums {race['tf_sums']}"
    )
    print(
        f"float16 image gradient on 400 overlapping boxes, max error / max |gradient|: "
        f"ours {half['ours']:.1e}, TF's {half['tf']:.1e} (one float16 rounding: "
        f"{half['rounding']:.1e})"
    )
    print(f"Held-out ROI accuracy: override on {acc_ours:.3f}, override off {acc_tf:.3f}")

    title = (
        f"crop_and_resize_grad against TF's CropAndResizeGradImage: TF {tf.__version__}, "
        f"{cores} CPU cores, op determinism {'on' if args.op_determinism else 'off'}; "
        f"ROI classifier, {args.steps} steps x {args.batch} images x {ROIS} ROIs, "
        f"seed {args.seed}"
    )
    path = os.path.abspath(args.out)
    results = {
        "race": race,
        "half": half,
        "loss_ours": r_ours.losses,
        "loss_ours2": r_ours2.losses,
        "loss_tf": r_tf.losses,
        "loss_tf2": r_tf2.losses,
        "det_ours": det_ours,
        "det_tf": det_tf,
        "same_grad": identical,
        "step_s": step_s,
        "op_s": op_s,
    }
    plot(path, results, title)
    print(f"Plot written to {path}")
    print(f"Total time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
