"""Every hyperparameter of the trainer's recipes, in one place.

A preset is a named recipe (`python -m trainer train --preset NAME`); command-line options
override the main values (`--help` lists them), and `bench/train.py PRESET:KEY=VALUE` any
of them. Each architecture has a default preset. Fixed details that no recipe varies (batch
norm's momentum, the whitening's patch size, the plateau cut's factor) sit with a comment
beside the code that uses them.
"""

# Recipe for scratch CNNs, after airbench (Keller Jordan, 2024) and the DAWNBench ResNets:
# a patch-whitening first layer, SGD with Nesterov momentum, a warm-up then cosine decay,
# label smoothing, flip + translate augmentation in NumPy (Keras' random-transform layers
# made a GPU step 100 times slower: trainer/augment.py), and flip + translate averaging at
# test time, built into the saved model.
_SCRATCH = {
    "arch": "scratch",
    "image_size": 32,          # CIFAR-10's own size; other data is resized to it when loaded
    "residual": False,         # a third conv per block with a skip connection (deeper nets)
    "activation_after_sum": False,  # residual blocks activate the sum, not their last conv (airbench96)
    "whiten_stem": True,       # first layer a frozen 2x2 conv whitening pixel patches (airbench):
                               # 22% faster than a learned 3x3 stem; +7 points after 4 short
                               # epochs, the same accuracy after 20 (BENCHMARKS.md)
    "batch_size": 512,         # large steps keep a GPU busy
    "learning_rate": 0.4,      # peak SGD learning rate, reached after the warm-up
    "warmup_fraction": 0.15,   # share of all steps spent ramping the learning rate up from 0
    "momentum": 0.9,           # Nesterov momentum
    "weight_decay": 5e-3,      # Keras decays outside the momentum (10x less effect at 0.9), so this
                               # is the usual 5e-4 of PyTorch's SGD; 5e-4 here lost 0.7-2.6 points
    "label_smoothing": 0.2,    # airbench's value: calibrates and regularises a short run
    # airbench's finer points, off here: on scratch-small, shortened, none helped (GELU with
    # logit_scale 1/9 led by 1.6 points at 6 epochs, by none at 12); the GPU presets turn them on
    "activation": "relu",      # or "gelu"
    "batchnorm_scale": True,   # False: batch norm learns a shift only
    "identity_init": False,    # convs start as the identity on their first channels (dirac init)
    "logit_scale": 1.0,        # logits multiplied by this (airbench: 1/9, with no output bias, as any value but 1 here)
    "bias_lr_scale": 1.0,      # batch-norm biases step this many times as far (airbench: 64)
    "lookahead_every": 0,      # pull the weights toward their average every N steps (0: off; airbench: 5)
    # Two precision details, measured together on the GPU (1e-5 and True): scratch-medium
    # 91.98% against 91.40% in the same round, scratch-large 92.72% against 93.46%; so off
    "batchnorm_epsilon": 1e-3,  # Keras' default; airbench's is 1e-12, PyTorch's 1e-5
    "stem_float32": False,     # keep normalisation and the whitened stem out of bfloat16
    "translate": 4,            # random shift in pixels (reflect-padded), as in most CIFAR recipes
    "cutout": 0,               # side of a random square blanked out per image (0: off)
    "cutmix": 0.0,             # share of batches given CutMix (a box pasted from another image, the
                               # labels mixed by area: trainer/augment.py); 0: off
    "alternate_flip": False,   # mirror a fixed random half of the images in even epochs, the other
                               # half in odd ones (airbench), not a coin each time; scratch-small: within noise
    "flip_tta": True,          # average predictions on the image and its mirror image
    "translate_tta": True,     # and on both moved one pixel (+0.24-0.38 points measured; 3x the work)
    "mixed_precision": True,   # bfloat16 compute on a GPU (ignored on a CPU); saved as float32
    "teacher": None,           # path to a trained model of ours to learn from too (distillation)
    "teacher_weight": 0.5,     # the teacher's share of each target, the labels' the rest
    "validation_fraction": 0.1,  # share of every class held out and scored (stratified)
    "seed": 0,                 # picks the held-out share, the initial weights and the augmentation
}

# airbench's finer points and optimizer settings (airbench96's, in Keras' terms), for the GPU
# presets. Together they gave scratch-large a point (92.2-92.4% -> 93.3% on the usual
# held-out split); one by one on scratch-medium each was within noise (BENCHMARKS.md).
_AIRBENCH = {
    "activation": "gelu",
    "batchnorm_scale": False,
    "identity_init": True,
    "logit_scale": 1 / 9,
    "bias_lr_scale": 64.0,
    "lookahead_every": 5,      # (each of these six is explained in _SCRATCH above)
    "batch_size": 1024,        # half the steps of 512: same accuracy, less time
    "learning_rate": 1.2,      # airbench96's 9.0 per 1024 images, for a mean loss
    "momentum": 0.85,          # airbench96's
    "weight_decay": 9e-3,      # airbench96's decay per step, outside the momentum as Keras applies it
    "warmup_fraction": 0.1,
}

PRESETS = {
    # For a CPU, and `train`'s default for --arch scratch: 0.66M parameters (2.7 MB), 50-68 minutes on the 2-core CPU
    # box, 89.56% held out; a web answer in 6-11 ms there (BENCHMARKS.md).
    "scratch-small": _SCRATCH | {
        "stem_width": 32,      # channels of a learned first conv, used only with whiten_stem off
                               # (kept for that comparison in bench/train.py)
        "widths": [48, 96, 192],  # channels of the three conv blocks
        "epochs": 40,          # 89.56% held out; 20 gave 87.7% (with weight decay 5e-4)
        "batch_size": 256,     # smaller steps: more updates in the few epochs a CPU affords
        "learning_rate": 0.2,  # scaled with the batch size
    },
    # The shipped model's recipe: scratch-large's residual blocks at about half its widths,
    # 2.2M parameters, 8.7 MB (within the 10 MB a default may take). 92.39% held out,
    # the mean over nine splits (airbench94's plain blocks at [64, 256, 256]: 91.85%); on an
    # H200 with JAX, 95 s from a fresh process, compiling included (BENCHMARKS.md).
    "scratch-medium": _SCRATCH | _AIRBENCH | {
        "stem_width": 32,      # with whiten_stem off only, as in scratch-small
        "widths": [64, 192, 224],
        "residual": True,
        "activation_after_sum": True,
        "epochs": 60,          # with the plain blocks 80 gave 91.44%, 100 92.02%
        "cutout": 8,           # with the plain blocks 12 gave 91.90%, within noise
    },
    # The most accurate, for a GPU: airbench96's net, about 10M parameters; 93.1-93.5% held
    # out, 90 s on an H200 from a fresh process, compiling included (BENCHMARKS.md).
    "scratch-large": _SCRATCH | _AIRBENCH | {
        "stem_width": 64,      # with whiten_stem off only
        "widths": [128, 384, 512],
        "residual": True,
        "activation_after_sum": True,
        "epochs": 60,          # 93.10-93.46% in four runs; 40 gave 93.18%, 80 93.26%
        "cutout": 12,          # airbench96's size (its square stays whole inside the image, ours
                               # may run off an edge: trainer/augment.py)
    },
    # Transfer learning: phase 1 trains the new head on a frozen base, phase 2 unfreezes
    # the top blocks at a lower learning rate (Adam in both; AdamW in phase 2 with "cosine").
    "vgg16": {
        "arch": "vgg16",
        "image_size": None,            # side of the images the model takes (its input); None: the
                                       # upscale size, or the images' own if at most half (CIFAR-10: 32)
        "upscale_size": 64,            # size the backbone sees, resized inside the model
        "weights": "imagenet",         # or "none", or a path to a weights file: VGG16 Keras' .h5
                                       # without top; EfficientNet-Lite0 the package's .pth
        "dense_units": 256,            # width of the new head's hidden layer; 0: none
        "dropout": 0.5,                # before the output layer of the head
        "batch_size": 64,              # images per step, in both phases
        "head_epochs": 5,              # phase 1: base frozen
        "head_learning_rate": 1e-3,    # Adam, phase 1: a new head learns fast
        "fine_tune_epochs": 10,        # phase 2: top blocks unfrozen
        "fine_tune_learning_rate": 1e-5,  # Adam, phase 2: small steps keep the pretrained features
        "fine_tune_schedule": "plateau",  # Adam, the rate cut 5x when val_loss stalls; or "cosine":
                                          # AdamW decaying to 0 over the phase
        "fine_tune_weight_decay": 0.05,   # AdamW's decoupled weight decay (with "cosine" only)
        "fine_tune_warmup_fraction": 0.0,  # with "cosine": share of the phase's steps ramping the rate
                                           # up from 0 first
        "unfreeze_blocks": ["block5"],  # layer-name prefixes made trainable in phase 2
        "train_batchnorm": False,      # phase 2: their batch norm learns the new images too (VGG16 has
                                       # none); 9-12 points worse for Lite0 on CIFAR-10 at 64 px
        "patience": 3,                 # epochs without val_loss progress before stopping the head
                                       # phase or a plateau phase (its rate cut waits one fewer);
                                       # a cosine phase runs to its end
        "translate": 4,                # augmentation and test-time views as for the scratch nets
        "cutout": 0,
        "cutmix": 0.0,                 # against over-fitting in long fine-tuning (efficientnet_lite0-whole)
        "alternate_flip": False,
        "label_smoothing": 0.0,
        "flip_tta": True,
        "translate_tta": False,        # a big backbone's work is not worth tripling
        "validation_fraction": 0.1,
        "selection_fraction": 0.1,     # share of the training images that picks the epoch to keep,
                                       # stops early and cuts the rate: never the held-out images
        "seed": 0,
    },
}

PRESETS["efficientnet_lite0"] = PRESETS["vgg16"] | {
    "arch": "efficientnet_lite0",
    "upscale_size": 224,               # its ImageNet size: 87.0% on the 320 Animals-10 photos (five
                                       # splits), where it beat 128 px by 8 points, and on CIFAR-10 92.8%
                                       # against 92.6% (those two comparisons with the epoch picked on
                                       # the held-out images: BENCHMARKS.md)
    "dropout": 0.3,                    # before the head's output layer; not tuned
    "fine_tune_learning_rate": 1e-4,   # Adam at 1e-4 suits its batch-norm-frozen blocks
    "unfreeze_blocks": ["top_", "block7", "block6"],  # its last stages, as block5 is VGG16's
}

# For thousands of images or more, on a GPU: the whole base fine-tuned with AdamW along a cosine,
# as ../shared/GPU.md's reference recipe. On CIFAR-10 (enlarged to 224 px inside the model):
# 93.82% held out, 435 s on a shared H200; 10 epochs without CutMix or smoothing had given
# 93.48% (still rising, 98.3% training accuracy), the whole base cut on plateaus 92.78%
# (BENCHMARKS.md). On the 240-photo Animals-10 splits the whole base did not help.
PRESETS["efficientnet_lite0-whole"] = PRESETS["efficientnet_lite0"] | {
    "batch_size": 128,
    "head_epochs": 2,                  # enough for a head on 40,000 images
    "fine_tune_epochs": 16,
    "fine_tune_schedule": "cosine",
    "fine_tune_learning_rate": 3e-4,   # AdamW's peak, decaying to 0 over the 16 epochs
    "unfreeze_blocks": ["stem", "block", "top"],  # every layer but batch norm
    "cutmix": 0.5,                     # with the smoothing, against the whole base's over-fitting
    "label_smoothing": 0.1,
}

DEFAULT_PRESET = {"scratch": "scratch-small", "vgg16": "vgg16", "efficientnet_lite0": "efficientnet_lite0"}
