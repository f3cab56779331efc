"""A tiny plain-TF ROI model shared by the distribution tests and their worker processes.

conv 3x3 (3->8, relu) -> tf.image.crop_and_resize of K ROIs per image to 4x4 ->
dense (128->5) -> softmax cross-entropy, summed and divided by the *global*
number of ROIs (so per-replica gradients add up to the single-device gradient).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

IMAGE, ROIS, CLASSES, CROP, CHANNELS = 12, 5, 5, 4, 8
GLOBAL_BATCH = 8  # images


def init_weights(seed=0):
    rng = np.random.default_rng(seed)
    return [
        (0.3 * rng.standard_normal([3, 3, 3, CHANNELS])).astype(np.float32),
        (0.1 * rng.standard_normal([CHANNELS])).astype(np.float32),
        (0.2 * rng.standard_normal([CROP * CROP * CHANNELS, CLASSES])).astype(np.float32),
        (0.1 * rng.standard_normal([CLASSES])).astype(np.float32),
    ]


def make_data(seed=1, batch=GLOBAL_BATCH):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal([batch, IMAGE, IMAGE, 3]).astype(np.float32)
    y1x1 = rng.uniform(0.0, 0.6, [batch, ROIS, 2])
    hw = rng.uniform(0.2, 0.4, [batch, ROIS, 2])
    boxes = np.concatenate([y1x1, np.minimum(y1x1 + hw, 1.0)], -1).astype(np.float32)
    labels = rng.integers(0, CLASSES, [batch, ROIS]).astype(np.int32)
    return images, boxes, labels


def loss_fn(weights, images, boxes, labels, global_rois):
    conv_w, conv_b, dense_w, dense_b = weights
    features = tf.nn.relu(tf.nn.conv2d(images, conv_w, 1, "SAME") + conv_b)
    batch, rois = tf.shape(boxes)[0], tf.shape(boxes)[1]
    crops = tf.image.crop_and_resize(
        features, tf.reshape(boxes, [-1, 4]), tf.repeat(tf.range(batch), rois), [CROP, CROP]
    )
    logits = tf.matmul(tf.reshape(crops, [-1, CROP * CROP * CHANNELS]), dense_w) + dense_b
    per_roi = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.reshape(labels, [-1]), logits)
    return tf.reduce_sum(per_roi) / tf.cast(global_rois, tf.float32)


def single_device_gradients(seed_w=0, seed_d=1):
    """The reference: gradients of the global-batch loss on one device."""
    weights = [tf.Variable(w) for w in init_weights(seed_w)]
    images, boxes, labels = make_data(seed_d)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(weights, images, boxes, labels, GLOBAL_BATCH * ROIS)
        return tape.gradient(loss, weights)

    return [g.numpy() for g in step()]


def strategy_gradients(strategy, seed_w=0, seed_d=1):
    """Gradients of the same loss, with the batch split over the strategy's
    replicas and the per-replica gradients all-reduced (sum)."""
    images, boxes, labels = make_data(seed_d)
    replicas = strategy.num_replicas_in_sync
    per = GLOBAL_BATCH // replicas
    with strategy.scope():
        weights = [tf.Variable(w) for w in init_weights(seed_w)]

    def shard(ctx):
        i = ctx.replica_id_in_sync_group
        sl = slice(i * per, (i + 1) * per)
        return images[sl], boxes[sl], labels[sl]

    data = strategy.experimental_distribute_values_from_function(shard)

    def replica_step(inputs):
        x, b, y = inputs
        with tf.GradientTape() as tape:
            loss = loss_fn(weights, x, b, y, GLOBAL_BATCH * ROIS)
        grads = tape.gradient(loss, weights)
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)

    @tf.function
    def step():
        return strategy.run(replica_step, args=(data,))

    per_replica = step()
    return [[t.numpy() for t in strategy.experimental_local_results(g)] for g in per_replica]
