"""The scratch recipe's optimizer: Keras' Nesterov SGD with two additions from airbench, and
its learning-rate schedule."""

from __future__ import annotations

import math

import keras
from keras import ops

# airbench's lookahead pull at the end of the run (0.95 per step, over 5 steps).
LOOKAHEAD_FINAL_PULL = 0.95 ** 5


@keras.saving.register_keras_serializable(package="trainer")  # cloning a compiled model rebuilds it
class AirbenchSGD(keras.optimizers.SGD):
    """SGD where

    - the batch-norm biases (betas) step `bias_lr_scale` times as far as the other weights:
      with no learned batch-norm scale they set each channel's threshold, and airbench found
      they learn too slowly at the convs' rate (64x saved it 5 of 22 epochs);
    - with `lookahead_every` N > 0, every N steps the weights are pulled back toward a slow
      running average of themselves and the average is put in their place (lookahead). The
      pull grows from 0 with the cube of the run's progress to 0.77 at the end, and the
      average is what training leaves. Built on Keras' own weight averaging (`use_ema` with
      `ema_overwrite_frequency`), whose fixed momentum alone hurt short runs (BENCHMARKS.md).
    """

    def __init__(self, learning_rate, total_steps: int, bias_lr_scale: float = 1.0, lookahead_every: int = 0,
                 **kwargs):
        kwargs.update(use_ema=lookahead_every > 0, ema_overwrite_frequency=lookahead_every or None)
        super().__init__(learning_rate, **kwargs)
        self.total_steps, self.bias_lr_scale, self.lookahead_every = total_steps, bias_lr_scale, lookahead_every

    def get_config(self):
        return super().get_config() | {"total_steps": self.total_steps, "bias_lr_scale": self.bias_lr_scale,
                                       "lookahead_every": self.lookahead_every}

    def build(self, variables):
        super().build(variables)
        # By index: TensorFlow hands `update_step` its own variables, which lack Keras' paths.
        self._batchnorm_biases = {self._get_variable_index(v) for v in variables if v.path.endswith("_bn/beta")}
        if self.use_ema:  # the average starts as the weights (Keras starts it at zero)
            for variable, average in zip(variables, self._model_variables_moving_average):
                average.assign(ops.copy(variable))  # a copy: JAX must not see one buffer twice

    def update_step(self, gradient, variable, learning_rate):
        if self.bias_lr_scale != 1.0 and self._get_variable_index(variable) in self._batchnorm_biases:
            learning_rate = ops.multiply(learning_rate, self.bias_lr_scale)
        super().update_step(gradient, variable, learning_rate)

    def _update_model_variables_moving_average(self, trainable_variables):
        # Keras calls this after every step with a fixed momentum; here the average only
        # moves on the steps where Keras then writes it back into the weights.
        step = ops.cast(self.iterations + 1, "float32")
        pull = LOOKAHEAD_FINAL_PULL * ops.power(ops.minimum(step / self.total_steps, 1.0), 3)
        momentum = ops.where(ops.equal(ops.mod(step, self.lookahead_every), 0), pull, 1.0)
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                average.assign(momentum * average + (1 - momentum) * variable)


@keras.saving.register_keras_serializable(package="trainer")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up from 0 to `peak` over `warmup_steps`, then a cosine down to 0 at
    `total_steps`: Keras' CosineDecay(0.0, total - warmup, warmup_target=peak, warmup_steps=
    warmup) with `ops.where` for its `ops.cond`, which JAX compiles afresh each time the rate is
    read outside a training step (every epoch, for the log: 6 s of a 95 s run on an H200)."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warming = self.peak * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        cooling = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warming, cooling)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}
