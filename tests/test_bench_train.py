"""bench/train.py's run specs: checked as the command line checks its options, before any
training (on a lent GPU, a typo found after the data loads costs minutes)."""

import importlib.util

import pytest

from webapp.config import ROOT

loader_spec = importlib.util.spec_from_file_location("bench_train", ROOT / "bench" / "train.py")
bench = importlib.util.module_from_spec(loader_spec)
loader_spec.loader.exec_module(bench)


def test_a_spec_gives_the_preset_with_its_overrides():
    _, hp = bench.parse_run("scratch-medium:epochs=30:learning_rate=2e-1:widths=[96,256,288]:cutmix=1:flip_tta=false")
    assert (hp["preset"], hp["epochs"], hp["learning_rate"]) == ("scratch-medium", 30, 0.2)
    assert hp["widths"] == [96, 256, 288]
    assert hp["cutmix"] == 1.0 and isinstance(hp["cutmix"], float)
    assert hp["flip_tta"] is False
    assert hp["cutout"] == 8  # the preset's own


@pytest.mark.parametrize("blocks", ['["block5","block4"]', "block5,block4"])
def test_layers_to_unfreeze_are_taken_in_json_or_as_the_command_line_writes_them(blocks):
    assert bench.parse_run(f"vgg16:weights=none:unfreeze_blocks={blocks}")[1]["unfreeze_blocks"] == ["block5", "block4"]


@pytest.mark.parametrize("spec, message", [
    ("scratch-huge", "unknown preset 'scratch-huge'"),
    ("scratch-small:epoch=3", "scratch-small has no hyperparameter 'epoch' (did you mean epochs?)"),
    ("scratch-small:epochs=2.5", "epochs must be a whole number, not '2.5'"),
    ("scratch-small:epochs=0", "epochs must be from 1 to 10,000, not 0"),
    ("scratch-small:learning_rate=nan", "learning_rate must be a finite number"),
    ("scratch-small:validation_fraction=1", "validation_fraction must be between 0 and 1"),
    ("scratch-small:flip_tta=1", "flip_tta takes true or false, such as true, not '1'"),
    ("scratch-small:widths=96,256", "widths takes a JSON list, such as [48, 96, 192], not '96,256' (in a shell"),
    ("scratch-small:teacher=/no/such.h5", "--teacher must be an existing model file"),
    ("vgg16:epochs=3", "--epochs does not apply to preset vgg16"),
    ("vgg16:weights=none:fine_tune_schedule=linear", "fine_tune_schedule must be plateau or cosine, not 'linear'"),
    ("vgg16:weights=none:unfreeze_blocks=blok5", "blok5"),
    ("vgg16:weights=/no/such.h5", "--weights must be imagenet, none or an existing file"),
])
def test_a_wrong_spec_is_refused_in_one_sentence(spec, message):
    with pytest.raises(SystemExit) as refused:
        bench.parse_run(spec)
    assert message in str(refused.value)
    assert str(refused.value).startswith("error: ")


def test_missing_data_is_one_sentence_not_a_traceback(monkeypatch):
    monkeypatch.setattr("sys.argv", ["bench/train.py", "scratch-small:epochs=1", "--data", "/no/such/data"])
    with pytest.raises(SystemExit) as refused:
        bench.main()
    assert str(refused.value) == "error: No such data folder or zip: /no/such/data"


CARD = {"history": {"seconds": [6.6]}, "training_images": 33, "evaluation": {"accuracy": 0.5, "samples": 3},
        "parameters": 657_859, "file_size_bytes": 2_700_000, "training_precision": "float32",
        "training_seconds": 7.0, "epochs_run": 1, "device": "cpu (2 cores)", "backend": "tensorflow",
        "keras_version": "3"}


def test_one_epoch_gives_no_speed_rather_than_the_compiling_epochs(capsys):
    row = bench.report("scratch-small:epochs=1", {"flip_tta": False}, CARD)
    assert row == "| `scratch-small:epochs=1` | 657,859 | 6.6 s | n/a | 7.0 s | n/a | 50.00% |"
    assert "throughput" not in capsys.readouterr().out


def test_ctrl_c_is_one_sentence_with_the_rows_of_the_runs_that_ended(monkeypatch, capsys):
    def interrupted(runs, data, out):
        yield "| `scratch-small` | 1 | 1.0 s | 1.00 s | 2.0 s | 10 | 50.00% |"
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "train_all", interrupted)
    monkeypatch.setattr("sys.argv", ["bench/train.py", "scratch-small", "scratch-large", "--data", "d"])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    assert "Interrupted after 1 of 2 runs" in str(stopped.value)
    assert "| `scratch-small` |" in capsys.readouterr().out
