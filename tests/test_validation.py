"""Bad inputs give TF errors (never a crash); valid edge cases work.

Each case runs eagerly and inside a tf.function whose inputs have unknown
shapes (so that the kernel's run-time checks, not the shape function, are
exercised). The crash-prone cases also run in a subprocess, so that a
segfault or CHECK-abort fails a test instead of killing pytest.
"""

from __future__ import annotations

import contextlib
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_close_scaled, describe_proc, run_python
from support.reference import grad_image_abs_scale, grad_image_reference

IA = tf.errors.InvalidArgumentError
OOR = tf.errors.OutOfRangeError
RE = tf.errors.ResourceExhaustedError

F = np.float32
I = np.int32  # noqa: E741


def base(n=2, ch=3, cw=3, depth=2, batch=2, height=5, width=5):
    """A valid input: (grads, boxes, box_ind, image_size)."""
    grads = np.ones((n, ch, cw, depth), F)
    boxes = np.tile(np.array([[0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]], F), (n // 2 + 1, 1))[:n]
    box_ind = (np.arange(n) % max(batch, 1)).astype(I)
    return grads, boxes, box_ind, np.array([batch, height, width, depth], I)


def with_box(value_row):
    g, b, bi, s = base()
    b = b.copy()
    b[0] = value_row
    return g, b, bi, s


def replace(index, value, **kw):
    args = list(base(**kw))
    args[index] = value
    return tuple(args)


def empty_boxes_input(boxes=None, box_ind=None, **kw):
    g, b, bi, s = base(n=0, **kw)
    return g, (b if boxes is None else boxes), (bi if box_ind is None else box_ind), s


NAN, INF = F(np.nan), F(np.inf)

# The messages the op's checks give (one shared C++ check; the pybind module
# raises the same text, tests/test_kernels_cpu.py).
BOX_IND_RANGE = (
    r"box_ind has values outside \[0, batch_size\): box_ind\[\d+\] = -?\d+ with batch_size \d+",
)
GRADS_4D = (r"grads must be 4-D \[num_boxes, crop_height, crop_width, depth\], got shape \[",)
HEIGHT_WIDTH = (r"image_size height and width must be positive, got -?\d+ x -?\d+",)
BATCH_DEPTH = (r"image_size batch and depth must be non-negative, got batch -?\d+ and depth -?\d+",)
TOO_MANY_ELEMENTS = (r"image_size \[.*\] has more elements than a tensor can index",)

# name -> (builder, expected error class, message patterns). Every pattern
# must be found (case-insensitively) in the message with TF's boilerplate
# (node names, "[Op:...]", ...) removed: the message must name the problem.
ERROR_CASES = {
    # non-finite boxes
    "nan_y1": (lambda: with_box([NAN, 0, 1, 1]), IA, ("boxes", "finite|nan")),
    "nan_x2": (lambda: with_box([0, 0, 1, NAN]), IA, ("boxes", "finite|nan")),
    "pinf_y2": (lambda: with_box([0, 0, INF, 1]), IA, ("boxes", "finite|inf")),
    "ninf_x1": (lambda: with_box([0, -INF, 1, 1]), IA, ("boxes", "finite|inf")),
    "nan_second_box": (
        lambda: replace(1, np.array([[0, 0, 1, 1], [0, NAN, 1, 1]], F)),
        IA,
        ("boxes", "finite|nan"),
    ),
    # boxes shape
    "boxes_shape_0": (
        lambda: empty_boxes_input(boxes=np.zeros([0], F)),
        IA,
        ("boxes", "2-D|rank|dim"),
    ),
    "boxes_shape_0_n2": (lambda: replace(1, np.zeros([0], F)), IA, ("boxes", "2-D|rank|dim")),
    "boxes_rank1": (lambda: replace(1, np.zeros([8], F)), IA, ("boxes", "2-D|rank|dim")),
    "boxes_rank3": (lambda: replace(1, np.zeros([2, 4, 1], F)), IA, ("boxes", "2-D|rank|dim")),
    "boxes_rank0": (lambda: replace(1, np.float32(0)), IA, ("boxes", "2-D|rank|dim")),
    "boxes_3_columns": (lambda: replace(1, np.zeros([2, 3], F)), IA, ("boxes", "4|column")),
    "boxes_5_columns": (lambda: replace(1, np.zeros([2, 5], F)), IA, ("boxes", "4|column")),
    # box_ind shape and values
    "box_ind_shape_0x0": (
        lambda: empty_boxes_input(box_ind=np.zeros([0, 0], I)),
        IA,
        ("box_ind", "1-D|rank|dim"),
    ),
    "box_ind_rank2": (lambda: replace(2, np.zeros([2, 1], I)), IA, ("box_ind", "1-D|rank|dim")),
    "box_ind_rank0": (lambda: replace(2, np.int32(0)), IA, ("box_ind", "1-D|rank|dim")),
    "box_ind_negative": (
        lambda: replace(2, np.array([0, -1], I)),
        OOR,
        BOX_IND_RANGE,
    ),
    "box_ind_equals_batch": (
        lambda: replace(2, np.array([2, 0], I)),
        OOR,
        BOX_IND_RANGE,
    ),
    "box_ind_int_min": (
        lambda: replace(2, np.array([0, np.iinfo(I).min], I)),
        OOR,
        BOX_IND_RANGE,
    ),
    "box_ind_batch_zero": (
        lambda: base(batch=0),
        OOR,
        BOX_IND_RANGE,
    ),
    # number of boxes disagrees
    "n_grads_3_boxes_2": (
        lambda: replace(0, np.ones((3, 3, 3, 2), F)),
        IA,
        ("grads", "boxes", "incompatible|match|agree|equal|same|disagree|has"),
    ),
    "n_box_ind_3_boxes_2": (
        lambda: replace(2, np.zeros([3], I)),
        IA,
        ("box_ind", "boxes", "incompatible|match|agree|equal|same|disagree|has"),
    ),
    "n_box_ind_0_boxes_2": (
        lambda: replace(2, np.zeros([0], I)),
        IA,
        ("box_ind", "boxes", "incompatible|match|agree|equal|same|disagree|has"),
    ),
    "n_grads_0_boxes_2": (
        lambda: replace(0, np.ones((0, 3, 3, 2), F)),
        IA,
        ("grads", "boxes", "incompatible|match|agree|equal|same|disagree|has"),
    ),
    # image_size values
    "height_zero": (
        lambda: replace(3, np.array([2, 0, 5, 2], I)),
        IA,
        HEIGHT_WIDTH,
    ),
    "width_zero": (
        lambda: replace(3, np.array([2, 5, 0, 2], I)),
        IA,
        HEIGHT_WIDTH,
    ),
    "height_negative": (
        lambda: replace(3, np.array([2, -3, 5, 2], I)),
        IA,
        HEIGHT_WIDTH,
    ),
    "width_negative": (
        lambda: replace(3, np.array([2, 5, -1, 2], I)),
        IA,
        HEIGHT_WIDTH,
    ),
    "batch_negative_no_boxes": (
        lambda: empty_boxes_input(batch=-1),
        IA,
        BATCH_DEPTH,
    ),
    "depth_negative": (
        lambda: replace(3, np.array([2, 5, 5, -2], I)),
        IA,
        BATCH_DEPTH,
    ),
    "depth_mismatch": (
        lambda: replace(3, np.array([2, 5, 5, 3], I)),
        IA,
        ("depth", "image_size|grads", "incompatible|match|mismatch|equal|but"),
    ),
    # image_size shape
    "image_size_3": (
        lambda: replace(3, np.array([2, 5, 5], I)),
        IA,
        ("image_size", "4|1-D|rank|elements"),
    ),
    "image_size_5": (
        lambda: replace(3, np.array([2, 5, 5, 2, 1], I)),
        IA,
        ("image_size", "4|1-D|rank|elements"),
    ),
    "image_size_rank2": (
        lambda: replace(3, np.array([[2, 5, 5, 2]], I)),
        IA,
        ("image_size", "4|1-D|rank|elements"),
    ),
    "image_size_rank0": (
        lambda: replace(3, np.int32(4)),
        IA,
        ("image_size", "4|1-D|rank|elements"),
    ),
    # grads shape
    "grads_rank3": (lambda: replace(0, np.ones((2, 3, 3), F)), IA, GRADS_4D),
    "grads_rank5": (lambda: replace(0, np.ones((2, 3, 3, 2, 1), F)), IA, GRADS_4D),
    "grads_ch0": (
        lambda: replace(0, np.ones((2, 0, 3, 2), F)),
        IA,
        ("grads|crop", "positive|> ?0|zero|empty"),
    ),
    "grads_cw0": (
        lambda: replace(0, np.ones((2, 3, 0, 2), F)),
        IA,
        ("grads|crop", "positive|> ?0|zero|empty"),
    ),
    "grads_ch0_no_boxes": (
        lambda: empty_boxes_input(ch=0),
        IA,
        ("grads|crop", "positive|> ?0|zero|empty"),
    ),
}

# Outputs that cannot exist: any TF error, as long as the process survives.
# name -> (builder, T)
HUGE_SIZE_CASES = {
    "size_overflows_int64": (
        lambda: empty_boxes_input(
            depth=2**31 - 1, batch=2**31 - 1, height=2**31 - 1, width=2**31 - 1
        ),
        tf.float32,
    ),
    "size_overflows_int64_small_depth": (
        lambda: empty_boxes_input(depth=2, batch=2**31 - 1, height=2**31 - 1, width=2**31 - 1),
        tf.float32,
    ),
    "size_overflows_int64_with_box_half": (
        lambda: base(n=2, ch=2, cw=2, depth=2, batch=2**31 - 1, height=2**31 - 1, width=2**31 - 1),
        tf.float16,
    ),
    "size_too_large_to_allocate": (
        lambda: empty_boxes_input(depth=64, batch=1, height=2**20, width=2**20),
        tf.float32,
    ),
    "size_too_large_to_allocate_with_box": (
        lambda: base(n=1, ch=2, cw=2, depth=64, batch=1, height=2**20, width=2**20),
        tf.float32,
    ),
    "size_too_large_to_allocate_with_box_half": (
        lambda: base(n=1, ch=2, cw=2, depth=64, batch=1, height=2**20, width=2**20),
        tf.float16,
    ),
    "size_too_large_to_allocate_with_box_bf16": (
        lambda: base(n=1, ch=2, cw=2, depth=64, batch=1, height=2**20, width=2**20),
        tf.bfloat16,
    ),
}
# With oneDNN on (TF's default), TF's BFC CPU allocator waits 10 s before it
# reports an impossible allocation, so in this process only one allocation
# case runs; the subprocess runs all of them with TF_ENABLE_ONEDNN_OPTS=0
# (plain CPU allocator, fails at once).
IN_PROCESS_HUGE_SIZE = {
    "eager": [k for k in HUGE_SIZE_CASES if "overflows" in k]
    + ["size_too_large_to_allocate_with_box"],
    "function": [k for k in HUGE_SIZE_CASES if "overflows" in k],
}

BIG = F(3e38)
FMAX = np.finfo(F).max
HUGE_BOXES = {
    "all_pos": [BIG, BIG, BIG, BIG],
    "all_neg": [-BIG, -BIG, -BIG, -BIG],
    "mix1": [BIG, -BIG, -BIG, BIG],
    "mix2": [-BIG, BIG, BIG, -BIG],
    "zero_to_big": [0, 0, BIG, BIG],
    "neg_big_to_zero": [-BIG, -BIG, 0, 0],
    "fmax": [-FMAX, -FMAX, FMAX, FMAX],
    "fmax_flipped": [FMAX, FMAX, -FMAX, -FMAX],
    "big_ordinary": [0.1, 0.2, 1e30, 0.9],
    "half_big": [-1e20, 0.5, 1e20, 0.5],
}


def huge_box_input(key, ch, cw):
    g, _, _, _ = base(n=3, ch=ch, cw=cw, depth=2)
    boxes = np.array([HUGE_BOXES[key], [0, 0, 1, 1], HUGE_BOXES[key][::-1]], F)
    return g, boxes, np.array([0, 1, 1], I), np.array([2, 5, 6, 2], I)


# -------------------------------------------------------------- runners

_BOILERPLATE = [
    r"\{\{.*?\}\}",  # {{function_node ...}}
    r"\[\[.*?\]\]",  # [[{{node ...}}]]
    r"\[Op:[^\]]*\]",  # [Op:CropAndResizeGrad>CropAndResizeGradImage]
    r"Graph execution error:",
    r"\bname:.*$",
]


def clean_message(message):
    for pattern in _BOILERPLATE:
        message = re.sub(pattern, " ", message, flags=re.S | re.M)
    return message


def check_message(error, patterns):
    message = clean_message(str(error))
    missing = [p for p in patterns if not re.search(p, message, flags=re.I)]
    assert not missing, f"message {message.strip()!r} does not match {missing}"


@contextlib.contextmanager
def raises_tf(error_class, patterns):
    """pytest.raises for a TF error whose cleaned message matches all patterns."""
    with pytest.raises(error_class) as info:
        yield info
    check_message(info.value, patterns)


_FUNCS = {}


def call(crg, args, mode, T=tf.float32, method="bilinear"):
    """Runs the op eagerly or in a tf.function with unknown input shapes."""
    if mode == "eager":
        return crg.crop_and_resize_grad_image(*args, T=T, method=method).numpy()
    if mode == "session":  # tf.compat.v1 graph of constants (shape fn sees all)
        with tf.Graph().as_default() as graph:
            out = crg.crop_and_resize_grad_image(*args, T=T, method=method)
            with tf.compat.v1.Session(graph=graph) as sess:
                return sess.run(out)
    key = (T, method)
    if key not in _FUNCS:
        spec = [
            tf.TensorSpec(None, tf.float32),
            tf.TensorSpec(None, tf.float32),
            tf.TensorSpec(None, tf.int32),
            tf.TensorSpec(None, tf.int32),
        ]

        @tf.function(input_signature=spec)
        def f(grads, boxes, box_ind, image_size):
            return crg.crop_and_resize_grad_image(
                grads, boxes, box_ind, image_size, T=T, method=method
            )

        _FUNCS[key] = f
    return _FUNCS[key](*args).numpy()


def check_huge_boxes(crg, key, mode, ch, cw, T, method):
    """Either a TF error or a finite result that matches the reference."""
    args = huge_box_input(key, ch, cw)
    try:
        out = call(crg, args, mode, T, method)
    except tf.errors.InvalidArgumentError:
        return "error"
    out = out.astype(np.float64)
    assert np.all(np.isfinite(out)), f"{key}: non-finite output"
    ref = grad_image_reference(*args, method=method)
    scale = grad_image_abs_scale(*args, method=method)
    rtol = {tf.float32: 1e-5, tf.float64: 1e-12}.get(T, 1e-2)
    assert_close_scaled(out, ref, scale, rtol, 1e-30, f"huge box {key}")
    return "finite"


def check_huge_size(crg, key, mode):
    """An element count past int64 is an InvalidArgumentError naming image_size;
    an allocation that fails may also be a ResourceExhaustedError."""
    builder, T = HUGE_SIZE_CASES[key]
    try:
        out = call(crg, builder(), mode, T)
    except tf.errors.OpError as e:
        if "overflows" in key:
            assert isinstance(e, IA), f"{key}: unexpected error class {type(e).__name__}: {e}"
            check_message(e, TOO_MANY_ELEMENTS)
        else:
            assert isinstance(e, (IA, RE)), f"{key}: unexpected error class {type(e).__name__}: {e}"
        return type(e).__name__
    raise AssertionError(f"{key}: no error, got an output of shape {out.shape}")


MODES = ("eager", "function")


# -------------------------------------------------------------- tests


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_bad_input_raises(crg, name, mode):
    builder, error, patterns = ERROR_CASES[name]
    with raises_tf(error, patterns):
        call(crg, builder(), mode)


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_bad_input_graph_construction_or_session(crg, name):
    """With constant inputs the shape function may reject the input when the
    graph is built (ValueError); otherwise running it must raise the error."""
    builder, error, patterns = ERROR_CASES[name]
    try:
        call(crg, builder(), "session")
    except ValueError as e:
        assert str(e), "empty ValueError"
    except tf.errors.OpError as e:
        assert isinstance(e, error), f"{type(e).__name__} instead of {error.__name__}: {e}"
        check_message(e, patterns)
    else:
        raise AssertionError("no error")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("T", [tf.float16, tf.bfloat16, tf.float64], ids=lambda t: t.name)
def test_bad_input_raises_other_dtypes(crg, T, mode):
    for name in ("nan_y1", "box_ind_negative", "depth_mismatch", "boxes_shape_0"):
        builder, error, patterns = ERROR_CASES[name]
        with raises_tf(error, patterns):
            call(crg, builder(), mode, T=T, method="nearest")


@pytest.mark.parametrize("mode, name", [(m, k) for m in MODES for k in IN_PROCESS_HUGE_SIZE[m]])
def test_output_too_large(crg, name, mode):
    check_huge_size(crg, name, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("crop", [(1, 1), (3, 4)], ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_huge_finite_boxes(crg, method, crop, mode):
    for key in HUGE_BOXES:
        for T in (tf.float32, tf.float16):
            check_huge_boxes(crg, key, mode, *crop, T, method)


def test_bad_method_and_dtype(crg):
    args = base()
    with pytest.raises((ValueError, IA), match=r"(?i)(method|bilinear|nearest)"):
        crg.crop_and_resize_grad_image(*args, T=tf.float32, method="bicubic")
    with pytest.raises((TypeError, ValueError, IA)):
        crg.crop_and_resize_grad_image(*args, T=tf.int32)


# ------------------------------------------------------ input conversion


def test_T_is_required(crg):
    """As in tf.raw_ops.CropAndResizeGradImage, T has no default."""
    with pytest.raises(TypeError, match="'T'"):
        crg.crop_and_resize_grad_image(*base())


def test_float64_boxes_and_grads_from_numpy_or_lists_become_float32(crg):
    g, b, bi, s = base()
    expected = call(crg, (g, b, bi, s), "eager")
    for boxes in (b.astype(np.float64), b.astype(np.float64).tolist()):
        out = crg.crop_and_resize_grad_image(g.astype(np.float64), boxes, bi, s, T=tf.float32)
        np.testing.assert_array_equal(out.numpy(), expected)


def test_int64_box_ind_and_image_size_become_int32(crg):
    g, b, bi, s = base()
    expected = call(crg, (g, b, bi, s), "eager")
    out = crg.crop_and_resize_grad_image(g, b, bi.astype(np.int64), s.astype(np.int64), T="float32")
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**40])
def test_int64_box_ind_outside_int32_is_rejected(crg, value):
    """Refused instead of wrapped into [0, batch) by the conversion."""
    g, b, bi, s = base()
    bi = bi.astype(np.int64)
    bi[1] = value
    with pytest.raises(ValueError, match="box_ind has values outside the int32 range"):
        crg.crop_and_resize_grad_image(g, b, bi, s, T=tf.float32)
    s = s.astype(np.int64)
    s[1] = value
    with pytest.raises(ValueError, match="image_size has values outside the int32 range"):
        crg.crop_and_resize_grad_image(g, b, base()[2], s, T=tf.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", [0, 1, 2, 3], ids=["grads", "boxes", "box_ind", "image_size"])
def test_tensor_of_the_wrong_dtype_is_not_cast(crg, index, mode):
    """A tf.Tensor keeps its dtype: TF's conversion refuses a mismatch
    (ValueError eagerly, TypeError when a tf.function is traced)."""
    args = list(base())
    wrong = tf.float64 if index < 2 else tf.int64
    args[index] = tf.constant(args[index], wrong)
    if mode == "eager":
        with pytest.raises(ValueError, match=f"requested dtype .* with dtype {wrong.name}"):
            crg.crop_and_resize_grad_image(*args, T=tf.float32)
    else:
        names = ("grads", "boxes", "box_ind", "image_size")

        @tf.function
        def f():
            return crg.crop_and_resize_grad_image(*args, T=tf.float32)

        with pytest.raises(TypeError, match=f"'{names[index]}' .* has type {wrong.name}"):
            f()


# ---------------------------------------------------------- valid edges


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "T", [tf.float16, tf.bfloat16, tf.float32, tf.float64], ids=lambda t: t.name
)
def test_no_boxes_gives_zeros(crg, T, mode):
    for method in ("bilinear", "nearest"):
        out = call(
            crg, empty_boxes_input(ch=3, cw=2, depth=4, batch=2, height=5, width=6), mode, T, method
        )
        assert out.shape == (2, 5, 6, 4)
        assert out.dtype == tf.as_dtype(T).as_numpy_dtype
        assert not np.any(out.astype(np.float64))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "T", [tf.float16, tf.bfloat16, tf.float32, tf.float64], ids=lambda t: t.name
)
def test_zero_depth(crg, T, mode):
    out = call(crg, base(depth=0), mode, T)
    assert out.shape == (2, 5, 5, 0)


@pytest.mark.parametrize("mode", MODES)
def test_zero_batch_no_boxes(crg, mode):
    out = call(crg, empty_boxes_input(batch=0), mode)
    assert out.shape == (0, 5, 5, 2)


@pytest.mark.parametrize("mode", MODES)
def test_garbage_values_ignored_without_boxes(crg, mode):
    """N == 0 with both boxes and box_ind empty is fine in every rank-correct form."""
    g, _, _, s = base(n=0)
    out = call(crg, (g, np.zeros((0, 4), F), np.zeros((0,), I), s), mode)
    assert out.shape == (2, 5, 5, 2) and not out.any()


# ------------------------------------------------------- subprocess


def test_crash_prone_cases_in_subprocess(crg):
    """Runs the crash-prone cases in a fresh interpreter (no op determinism):
    a crash there fails this test instead of killing pytest."""
    code = """
    import sys, json
    import tensorflow as tf
    import crop_and_resize_grad as crg
    import test_validation as tv

    def log(*a):
        print(*a, flush=True)

    for mode in tv.MODES:
        for name in tv.CRASH_PRONE_ERRORS:
            builder, error, patterns = tv.ERROR_CASES[name]
            log("start", mode, name)
            try:
                tv.call(crg, builder(), mode)
                log("RESULT", json.dumps([mode, name, "no error"]))
            except tf.errors.OpError as e:
                try:
                    tv.check_message(e, patterns)
                    outcome = type(e).__name__
                except AssertionError as a:
                    outcome = str(a)[:300]
                log("RESULT", json.dumps([mode, name, outcome]))
        for name in tv.HUGE_SIZE_CASES:
            log("start", mode, name)
            try:
                log("RESULT", json.dumps([mode, name, tv.check_huge_size(crg, name, mode)]))
            except AssertionError as e:
                log("RESULT", json.dumps([mode, name, "assert: " + str(e)[:200]]))
        for key in tv.HUGE_BOXES:
            for crop in [(1, 1), (3, 4)]:
                for method in ("bilinear", "nearest"):
                    log("start", mode, key, crop, method)
                    try:
                        r = tv.check_huge_boxes(crg, key, mode, *crop, tf.float32, method)
                    except AssertionError as e:
                        r = "assert: " + str(e)[:200]
                    log("RESULT", json.dumps([mode, key, r]))
    log("DONE")
    """
    proc = run_python(code, timeout=240, env_extra={"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert proc.returncode == 0 and "DONE" in proc.stdout, "subprocess died:\n" + describe_proc(
        proc
    )
    problems = []
    for line in proc.stdout.splitlines():
        if not line.startswith("RESULT "):
            continue
        mode, name, outcome = json.loads(line[len("RESULT ") :])
        if name in ERROR_CASES:
            expected = ERROR_CASES[name][1].__name__
            if outcome != expected:
                problems.append(f"{mode} {name}: {outcome} (expected {expected})")
        elif name in HUGE_SIZE_CASES:
            if outcome not in ("InvalidArgumentError", "ResourceExhaustedError"):
                problems.append(f"{mode} {name}: {outcome}")
        elif outcome not in ("error", "finite"):
            problems.append(f"{mode} huge box {name}: {outcome}")
    assert not problems, "\n".join(problems)


CRASH_PRONE_ERRORS = [
    "nan_y1",
    "nan_x2",
    "pinf_y2",
    "ninf_x1",
    "boxes_shape_0",
    "boxes_shape_0_n2",
    "box_ind_shape_0x0",
    "box_ind_negative",
    "box_ind_equals_batch",
    "box_ind_int_min",
    "batch_negative_no_boxes",
    "depth_negative",
    "height_negative",
]
