"""The presets, as the README and docs/training.md state them: a change of one needs them changed too."""

import re
from pathlib import Path

from trainer.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = " ".join((TEXT + (ROOT / "docs" / "training.md").read_text(encoding="utf-8")).split())  # as read
TABLE = TEXT.split("| preset | what | meant for |")[1].split("\n\n")[0]
SCRATCH = [name for name, hp in PRESETS.items() if hp["arch"] == "scratch"]
TRANSFER = [name for name, hp in PRESETS.items() if hp["arch"] != "scratch"]


def test_every_preset_is_in_the_readmes_table():
    listed = re.findall(r"^\| `([\w-]+)` \|", TABLE, re.MULTILINE)
    assert sorted(listed) == sorted(PRESETS), (f"README's presets table lacks {sorted(set(PRESETS) - set(listed))}, "
                                                f"or lists {sorted(set(listed) - set(PRESETS))} that are none")


def test_the_scratch_presets_epochs_and_image_size_are_the_readmes():
    for name in SCRATCH:
        assert re.search(rf"\| `{name}` \| [^|]*\b{PRESETS[name]['epochs']} epochs\b", TABLE), name
        assert PRESETS[name]["image_size"] == 32
    assert "32 px for the scratch presets" in DOCS


def test_the_shares_held_out_and_the_transfer_sizes_are_the_readmes():
    assert {hp["validation_fraction"] for hp in PRESETS.values()} == {0.1}
    assert "(`--validation-fraction`, default 0.1)" in DOCS
    assert {PRESETS[name]["selection_fraction"] for name in TRANSFER} == {0.1}
    assert "(`selection_fraction`, 0.1, " in DOCS
    sizes = PRESETS["efficientnet_lite0"]["upscale_size"], PRESETS["vgg16"]["upscale_size"]
    assert "(`--upscale-size`; {} px for EfficientNet-Lite0, {} for VGG16)".format(*sizes) in DOCS


def test_the_test_time_views_are_the_readmes():
    for name in SCRATCH:
        assert PRESETS[name]["flip_tta"] and PRESETS[name]["translate_tta"], name
    assert "averaging over six views (the image and its mirror, and each of them moved one pixel" in DOCS
    for name in TRANSFER:
        assert PRESETS[name]["flip_tta"] and not PRESETS[name]["translate_tta"], name
    assert "average over the image and its mirror only" in DOCS


def test_cutmix_and_the_whole_lite0_runs_length_are_the_readmes():
    whole = PRESETS["efficientnet_lite0-whole"]
    assert re.search(rf"\| `efficientnet_lite0-whole` \| [^|]*\b{whole['fine_tune_epochs']} epochs\b", TABLE)
    assert whole["cutmix"] == 0.5
    assert (f"`efficientnet_lite0-whole` gives half its batches CutMix (with label smoothing {whole['label_smoothing']} "
            f"and {whole['fine_tune_epochs']} epochs") in DOCS
    assert [name for name, hp in PRESETS.items() if hp["cutmix"]] == ["efficientnet_lite0-whole"]
    assert "every other preset leaves it off" in DOCS
