import keras
import numpy as np
import pytest
from keras import layers

from trainer.optimizers import AirbenchSGD, WarmupCosine


def values(variables):
    return {v.path: keras.ops.convert_to_numpy(v).copy() for v in variables}


def test_batchnorm_biases_step_bias_lr_scale_times_as_far():
    inputs = keras.Input((4,))
    x = layers.BatchNormalization(scale=False, name="block1a_bn")(inputs)  # named as the scratch nets name theirs
    variables = keras.Model(inputs, layers.Dense(2, name="predictions")(x)).trainable_variables
    optimizer = AirbenchSGD(0.1, total_steps=10, bias_lr_scale=64.0)
    before = values(variables)
    optimizer.apply([np.ones(v.shape, np.float32) for v in variables], variables)
    after = values(variables)
    assert np.allclose(before["block1a_bn/beta"] - after["block1a_bn/beta"], 6.4)
    assert np.allclose(before["predictions/bias"] - after["predictions/bias"], 0.1)
    assert np.allclose(before["predictions/kernel"] - after["predictions/kernel"], 0.1)


def test_lookahead_pulls_the_weights_back_to_their_average_every_n_steps():
    variable = keras.Variable(np.ones(3, np.float32))  # not 0, where Keras would start the average
    total, every, learning_rate = 8, 2, 0.5
    optimizer = AirbenchSGD(learning_rate, total_steps=total, lookahead_every=every)
    weights = average = 1.0  # the same computation by hand, on one number: the average starts as the weights
    for step in range(1, total + 1):
        optimizer.apply([np.ones(3, np.float32)], [variable])
        weights -= learning_rate
        if step % every == 0:
            pull = 0.95 ** 5 * (step / total) ** 3  # airbench's 0.95 per step, over 5 steps, at the end
            weights = average = pull * average + (1 - pull) * weights
        assert np.allclose(keras.ops.convert_to_numpy(variable), weights), step
    assert weights > 1 - learning_rate * total + 0.5  # the pulls held the weights back


def test_the_settings_survive_a_round_trip_through_the_config():
    # As when Keras saves the optimizer with a model, or clones it.
    optimizer = AirbenchSGD(0.1, total_steps=10, bias_lr_scale=32.0, lookahead_every=5)
    again = AirbenchSGD.from_config(optimizer.get_config())
    assert (again.total_steps, again.bias_lr_scale, again.lookahead_every) == (10, 32.0, 5)


@pytest.mark.parametrize("warmup", [0, 7])
def test_the_schedule_gives_keras_warm_up_and_cosine_rates(warmup):
    total = 50
    ours = WarmupCosine(1.2, warmup, total)
    theirs = keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=1.2, warmup_steps=warmup)
    steps = range(total + 3)  # on past the end, where both stay at 0
    rates = [float(ours(step)) for step in steps]
    assert np.allclose(rates, [float(theirs(step)) for step in steps], atol=1e-6)
    assert rates[0] == pytest.approx(0.0 if warmup else 1.2) and max(rates) == pytest.approx(1.2) and rates[-1] == 0
    again = WarmupCosine.from_config(ours.get_config())
    assert float(again(20)) == rates[20]
