"""The model registry: discovery, lazy loading, reloads, and faults that leave others working."""

import errno
import gc
import json
import logging
import os
import shutil
import subprocess
import textwrap
import threading
import weakref
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import post_api, save_as, save_lambda_model, save_model_without_softmax
from trainer import model_file
from webapp import registry as registry_module
from trainer.formatting import filesize
from webapp.registry import FileChanged, ModelUnavailable, Registry, UnknownModel, listed_or_404


@pytest.fixture
def registry(models_dir):
    return Registry(models_dir)


def names(registry):
    return [info.name for info in registry.models()]


def test_finds_models_and_ignores_temporary_and_other_files(registry, models_dir):
    (models_dir / ".tiny.abc123.h5").write_bytes(b"half written")
    (models_dir / "notes.txt").write_text("hello")
    assert names(registry) == ["small", "tiny"]
    assert all(info.available for info in registry.models())


def test_a_file_name_that_is_not_utf8_is_left_out(registry, models_dir):
    folder = os.fsencode(models_dir)
    for suffix in (b".h5", b".json"):  # caf\xe9: Latin-1, as some zip tools leave names
        shutil.copy(os.path.join(folder, b"tiny" + suffix), os.path.join(folder, b"caf\xe9" + suffix))
    assert names(registry) == ["small", "tiny"]


def test_files_that_are_not_regular_ones_are_unavailable_not_waited_on(registry, models_dir):
    # Opening a FIFO waits for a writer: every request that lists the models would hang.
    shutil.copy(models_dir / "tiny.h5", models_dir / "pipe.h5")
    os.mkfifo(models_dir / "pipe.json")
    os.mkfifo(models_dir / "fifo.h5")
    shutil.copy(models_dir / "tiny.json", models_dir / "fifo.json")
    errors = {info.name: info.error for info in registry.models()}
    assert errors["pipe"] == "metrics card pipe.json is unreadable: it is not a regular file"
    assert errors["fifo"] == "fifo.h5 is not a regular file; copy it again, or train it again"
    assert errors["tiny"] is None


def test_missing_folder_means_no_models(tmp_path):
    assert Registry(tmp_path / "nowhere").models() == []


def test_loads_lazily_and_once_across_threads(registry, monkeypatch):
    calls = []
    real = registry_module._load_keras_model
    monkeypatch.setattr(registry_module, "_load_keras_model", lambda path: calls.append(path) or real(path))
    assert names(registry) == ["small", "tiny"] and calls == []  # listed, not loaded
    results = []
    threads = [threading.Thread(target=lambda: results.append(registry.load("tiny"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert all(model is results[0] for model in results)
    assert registry.load("tiny").predict(np.zeros((2, 16, 16, 3), np.float32)).shape == (2, 3)


def test_replaced_file_is_reloaded(registry, models_dir):
    first = registry.load("tiny")
    shutil.copy2(models_dir / "small.h5", models_dir / "tiny.h5")
    shutil.copy2(models_dir / "small.json", models_dir / "tiny.json")
    second = registry.load("tiny")
    assert second is not first
    assert second.classes == ["apple", "pear", "plum", "fig"] and second.input_size == (24, 24)


def test_a_file_replaced_while_a_load_waits_is_checked_before_it_is_opened(registry, models_dir, monkeypatch):
    class Gate:
        """The load lock, held by the test until the waiting load's file has been replaced."""

        def __init__(self):
            self.lock, self.waiting = threading.Lock(), threading.Event()

        def __enter__(self):
            self.waiting.set()
            self.lock.acquire()

        def __exit__(self, *exc_info):
            self.lock.release()

    opened = []
    monkeypatch.setattr(registry_module, "_load_keras_model", opened.append)
    gate = registry._load_lock = Gate()
    gate.lock.acquire()
    errors = []

    def load():
        try:
            registry.load("tiny")
        except ModelUnavailable as error:
            errors.append(str(error))

    thread = threading.Thread(target=load)
    thread.start()
    assert gate.waiting.wait(30)
    (models_dir / "garbage").write_bytes(b"not HDF5 at all")
    os.replace(models_dir / "garbage", models_dir / "tiny.h5")
    gate.lock.release()
    thread.join(60)
    assert opened == [] and errors == ["Model 'tiny' cannot be used: tiny.h5 is not an HDF5 model file; copy it again, or train it again"]


def test_new_file_is_noticed(registry, models_dir):
    assert "copy" not in names(registry)
    shutil.copy2(models_dir / "tiny.h5", models_dir / "copy.h5")
    shutil.copy2(models_dir / "tiny.json", models_dir / "copy.json")
    assert "copy" in names(registry)
    assert registry.load("copy").classes == ["cat", "dog", "ship"]


def test_removed_file_disappears(registry, models_dir):
    loaded = weakref.ref(registry.load("tiny"))
    (models_dir / "tiny.h5").unlink()
    assert names(registry) == ["small"]
    gc.collect()
    assert loaded() is None  # its memory freed, in a worker that may serve for weeks
    with pytest.raises(UnknownModel):
        registry.load("tiny")
    assert registry.load("small")


def test_a_replaced_or_removed_model_is_freed_at_once(registry, models_dir):
    # A Keras model's reference cycles kept each dropped version until Python's next full
    # collection, 6 or more versions later in a worker: 25 MB each for the shipped model.
    gc.disable()  # no collection but the registry's own
    try:
        replaced = weakref.ref(registry.load("tiny").model)
        for suffix in (".json", ".h5"):  # the same files renamed over it: a new version
            shutil.copy2(models_dir / f"tiny{suffix}", models_dir / f".tiny{suffix}")
            os.replace(models_dir / f".tiny{suffix}", models_dir / f"tiny{suffix}")
        registry.load("tiny")
        assert replaced() is None  # by the load itself: the listing's collection below would hide it
        removed = weakref.ref(registry.load("small").model)
        (models_dir / "small.h5").unlink()
        assert names(registry) == ["tiny"]
        assert removed() is None
    finally:
        gc.enable()


def test_links_through_a_file_or_in_a_loop_are_listed_as_leading_nowhere(registry, models_dir):
    (models_dir / "through.h5").symlink_to(models_dir / "small.h5" / "x.h5")  # a file taken for a folder
    (models_dir / "loop.h5").symlink_to(models_dir / "loop.h5")
    for name in ("through", "loop"):
        shutil.copy2(models_dir / "tiny.json", models_dir / f"{name}.json")
    info = {info.name: info for info in registry.models()}
    for name in ("through", "loop"):
        assert info[name].error.startswith(f"{name}.h5 is a link to a file that is not there")


def test_a_link_to_a_file_gone_is_listed_as_unusable_until_it_leads_to_one(registry, models_dir, tmp_path):
    target = tmp_path / "elsewhere" / "linked.h5"
    (models_dir / "linked.h5").symlink_to(target)
    shutil.copy2(models_dir / "tiny.json", models_dir / "linked.json")
    info = {info.name: info for info in registry.models()}["linked"]
    assert info.error == ("linked.h5 is a link to a file that is not there: link it to the model again, "
                          "or copy the model in")
    assert str(tmp_path) not in info.error and info.file_size is None  # the link's own size is no model's
    target.parent.mkdir()
    shutil.copy2(models_dir / "tiny.h5", target)
    assert registry.load("linked").classes == ["cat", "dog", "ship"]


def test_a_link_into_a_folder_that_cannot_be_entered_is_left_out_not_a_failure(registry, models_dir, monkeypatch):
    (models_dir / "locked.h5").symlink_to(models_dir / "no_entry" / "locked.h5")
    real_stat = os.stat

    def no_entry(path, *args, follow_symlinks=True, **kwargs):  # the link followed, into a folder one may not enter
        if follow_symlinks and os.fspath(path).endswith("locked.h5"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_stat(path, *args, follow_symlinks=follow_symlinks, **kwargs)

    monkeypatch.setattr(os, "stat", no_entry)
    assert names(registry) == ["small", "tiny"]


def write_hdf5_keras_cannot_build(folder):
    """A file that HDF5 reads through, with a model's parts, that Keras cannot build a model from."""
    with h5py.File(folder / "tiny.h5", "w") as f:
        f.attrs["model_config"] = "{not JSON"
        f.create_group("model_weights")


def write_hdf5_that_is_not_a_model(folder):
    """A file that HDF5 reads through that holds no model's layout, as save_weights writes."""
    with h5py.File(folder / "tiny.h5", "w") as f:
        f["numbers"] = np.arange(10)


def save_custom_layer_model(folder) -> None:
    import keras

    class Doubler(keras.layers.Layer):  # a notebook's own layer, its code not in this project
        def call(self, x):
            return 2 * x

    keras.Sequential([keras.Input((16, 16, 3)), Doubler(), keras.layers.Flatten(),
                      keras.layers.Dense(3, activation="softmax")]).save(folder / "tiny.h5")


def save_preprocess_input_model(folder) -> None:
    """A model that calls keras.applications' preprocess_input on its input, as transfer-learning
    notebooks do: operations on tensors, which Keras writes to .h5 and cannot read back."""
    import keras

    image = keras.Input((16, 16, 3))
    flat = keras.layers.Flatten()(keras.applications.mobilenet_v2.preprocess_input(image))
    keras.Model(image, keras.layers.Dense(3, activation="softmax")(flat)).save(folder / "tiny.h5")


def save_one_output_model(path) -> None:
    """A two-class model of one sigmoid output, as cats-vs-dogs notebooks make."""
    import keras

    keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(1, activation="sigmoid")]).save(path)


def save_per_pixel_model(path) -> None:
    """A 16x16 model with a softmax over three classes for each pixel, not for the image."""
    import keras

    keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(3, 1, activation="softmax")]).save(path)


def save_two_answer_model(path) -> None:
    import keras

    image = keras.Input((16, 16, 3))
    flat = keras.layers.Flatten()(image)
    answers = [keras.layers.Dense(3, activation="softmax")(flat) for _ in range(2)]
    keras.Model(image, answers).save(path)


def set_input_shape(folder, shape):
    card = json.loads((folder / "tiny.json").read_text())
    card["input_shape"] = shape
    (folder / "tiny.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: (d / "tiny.h5").write_bytes(b"\x00" * 100), "tiny.h5 is not an HDF5 model file"),
        (lambda d: (d / "tiny.h5").write_bytes((d / "tiny.h5").read_bytes()[:3000]), "tiny.h5 is incomplete: 3.0 kB of"),
        (write_hdf5_keras_cannot_build, "cannot be loaded"),
        (write_hdf5_that_is_not_a_model, "tiny.h5 holds no Keras model, only weights or other data"),
        (lambda d: save_lambda_model(d / "tiny.h5"),
         "it holds a Lambda layer, Python code that Keras does not run from a file: build the model of Keras's own "
         "layers, without Lambda, and save it again"),
        (save_custom_layer_model, "it uses a layer that Keras cannot rebuild from the file (Doubler): a class of its "
                                  "maker's own or of another library"),
        (save_preprocess_input_model, "it uses a layer that Keras cannot rebuild from the file (TrueDivide)"),
        (lambda d: (d / "tiny.json").unlink(), "no metrics card (tiny.json)"),
        (lambda d: (d / "tiny.json").write_text("{oops"), "metrics card tiny.json is unreadable"),
        (lambda d: (d / "tiny.json").write_text('{"classes": []}'), "lacks input_shape"),
        (lambda d: (d / "tiny.json").write_text('{"classes": [], "input_shape": [16, 16, 3]}'), "no valid class list"),
        (lambda d: (d / "tiny.json").write_text('{"classes": ["a", "b"], "input_shape": [16, 16, 3]}'),
         "the model has 3 outputs but its card lists 2 classes"),
        (lambda d: save_one_output_model(d / "tiny.h5"), "the model has 1 output but its card lists 3 classes"),
        (lambda d: set_input_shape(d, [20, 20, 3]),
         "the model takes inputs of shape 16 x 16 x 3, not the RGB images of its card's size (20 x 20 x 3)"),
        (lambda d: set_input_shape(d, [16, 16, 1]),
         "metrics card tiny.json's input_shape has 1 channel, where models here take RGB images (3)"),
        (lambda d: save_model_without_softmax(d / "tiny.h5"), "it gives outputs that are not probabilities (its last layer needs a softmax)"),
        (lambda d: save_per_pixel_model(d / "tiny.h5"),
         "the model answers an image with 16 x 16 x 3, not one score per class of its card"),
        (lambda d: save_two_answer_model(d / "tiny.h5"), "the model answers an image with 2 outputs, not one score"),
    ],
    ids=["not-hdf5", "truncated-h5", "keras-cannot-build", "hdf5-not-a-model", "lambda", "custom-layer",
         "preprocess-input", "no-card", "bad-json", "card-lacks-keys", "no-classes", "class-count", "one-output",
         "input-size", "input-channels", "no-softmax", "per-pixel", "two-outputs"],
)
def test_damaged_model_is_unavailable_and_others_work(registry, models_dir, damage, reason):
    damage(models_dir)
    with pytest.raises(ModelUnavailable) as failure:
        registry.load("tiny")
    assert reason in failure.value.reason
    assert str(models_dir) not in failure.value.reason  # no server paths in messages
    info = {info.name: info for info in registry.models()}["tiny"]
    assert not info.available and reason in info.error
    assert registry.load("small").classes[0] == "apple"


def test_a_truncated_file_is_unavailable_before_any_load(models_dir, monkeypatch):
    # Found at the first listing, so every worker lists it alike, not only those that tried it.
    data = (models_dir / "tiny.h5").read_bytes()
    (models_dir / "broken.h5").write_bytes(data[: len(data) // 2])
    card = json.loads((models_dir / "tiny.json").read_text())
    del card["file_size_bytes"]  # nothing to compare the size with: HDF5's header says the size
    (models_dir / "broken.json").write_text(json.dumps(card))
    monkeypatch.setattr(registry_module, "_load_keras_model", pytest.fail)
    info = {info.name: info for info in Registry(models_dir).models()}
    assert not info["broken"].available
    assert info["broken"].error == (f"broken.h5 is incomplete: {filesize(len(data) // 2)} of the {filesize(len(data))} "
                                    "it should hold; copy it again, or train it again")
    assert str(models_dir) not in info["broken"].error
    assert info["tiny"].available and info["small"].available


def test_a_file_smaller_than_its_card_records_is_called_incomplete(models_dir):
    data = (models_dir / "tiny.h5").read_bytes()
    (models_dir / "cut.h5").write_bytes(data[:1000])
    card = json.loads((models_dir / "tiny.json").read_text()) | {"file_size_bytes": len(data)}
    (models_dir / "cut.json").write_text(json.dumps(card))
    error = Registry(models_dir).info("cut").error
    assert error == (f"cut.h5 is incomplete: 1.0 kB of the {filesize(len(data))} its card records; "
                     "copy it again, or train it again")


def test_a_file_is_read_through_once_per_version(registry, models_dir, monkeypatch):
    checks = []
    real = model_file._read_through
    monkeypatch.setattr(model_file, "_read_through",
                        lambda paths: checks.extend(path.name for path in paths) or real(paths))
    for _ in range(3):
        registry.models()
        registry.load("tiny")
    assert sorted(checks) == ["small.h5", "tiny.h5"]
    shutil.copy2(models_dir / "small.h5", models_dir / "tiny.h5")
    shutil.copy2(models_dir / "small.json", models_dir / "tiny.json")
    registry.models()
    assert sorted(checks) == ["small.h5", "tiny.h5", "tiny.h5"]


def test_damaged_model_is_not_reloaded_until_it_changes(registry, models_dir, monkeypatch):
    write_hdf5_keras_cannot_build(models_dir)
    calls = []
    real = registry_module._load_keras_model
    monkeypatch.setattr(registry_module, "_load_keras_model", lambda path: calls.append(path) or real(path))
    for _ in range(3):
        with pytest.raises(ModelUnavailable):
            registry.load("tiny")
    assert len(calls) == 1
    shutil.copy2(models_dir / "small.h5", models_dir / "tiny.h5")
    shutil.copy2(models_dir / "small.json", models_dir / "tiny.json")
    assert registry.load("tiny").classes[0] == "apple"


def test_a_model_with_nan_weights_is_listed_unavailable_before_any_load(client, models_dir, monkeypatch):
    # Found in the child's read, so that every worker lists it alike (random bytes written over
    # a model's middle gave NaN weights, which only the workers that loaded it found before).
    import keras

    model = keras.saving.load_model(models_dir / "tiny.h5")
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    save_as(models_dir, model, "nan")
    monkeypatch.setattr(registry_module, "_load_keras_model", pytest.fail)
    error = client.get("/api/models/nan").get_json()["error"]
    assert error.startswith("nan.h5 holds NaN or infinite weights (in model_weights/")
    assert error.endswith("): it is damaged, or its training diverged; copy it again, or train it again")


def test_a_model_that_gives_nan_on_a_blank_image_is_unavailable_once_loaded(client, models_dir, make_image):
    import keras

    # Finite weights whose sums overflow: 3e38 (a float32's largest is 3.4e38) times 1e38.
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(3),
                              keras.layers.Dense(3, activation="softmax")])
    model.set_weights([np.zeros((768, 3), np.float32), np.full(3, 3e38, np.float32),
                       np.full((3, 3), 1e38, np.float32), np.zeros(3, np.float32)])
    save_as(models_dir, model, "nan")
    reason = "it gives NaN or infinite outputs (damaged weights, or a training run that diverged)"
    response = post_api(client, make_image(), model="nan")
    assert response.status_code == 503
    assert response.get_json() == {"error": f"Model 'nan' cannot be used: {reason}"}
    assert {"name": "nan", "available": False, "error": reason}.items() <= client.get("/api/models/nan").get_json().items()


def test_a_model_whose_reading_crashes_hdf5_is_unavailable_and_the_worker_lives(registry, monkeypatch):
    # Some damaged files make HDF5 itself segfault (1 in 180 random corruptions did); the
    # check runs in a child process, here one that crashes as such a file makes it crash.
    monkeypatch.setattr(model_file, "HDF5_READ_CHECK", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    loads = []
    monkeypatch.setattr(registry_module, "_load_keras_model", loads.append)
    info = {info.name: info for info in registry.models()}
    assert info["tiny"].error == "tiny.h5 is damaged: reading it crashes HDF5 (signal 11); copy it again, or train it again"
    with pytest.raises(ModelUnavailable, match=r"tiny.h5 is damaged: reading it crashes HDF5 \(signal 11\)"):
        registry.load("tiny")
    assert loads == []  # never opened in this process


def children_started(monkeypatch):
    """The files each child process started from now on was given to read, by name."""
    started = []
    real = subprocess.Popen

    def popen(args, *rest, **options):
        started.append([Path(arg).name for arg in args[3:]])  # after python -c <script>
        return real(args, *rest, **options)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return started


def copy_model(folder, source, target):
    for suffix in (".h5", ".json"):
        shutil.copy2(folder / f"{source}{suffix}", folder / f"{target}{suffix}")


def test_the_first_listing_reads_all_new_files_in_one_child_process(registry, models_dir, monkeypatch):
    # A child costs a Python start and an h5py import (0.2 s): one per file made a first
    # listing of 20 models take 3 s.
    for n in range(5):
        copy_model(models_dir, "tiny", f"copy{n}")
    started = children_started(monkeypatch)
    infos = registry.models()
    new = ["copy0", "copy1", "copy2", "copy3", "copy4", "small", "tiny"]
    assert [info.name for info in infos] == new and all(info.available for info in infos)
    assert started == [[f"{name}.h5" for name in new]]
    registry.models()
    assert len(started) == 1
    copy_model(models_dir, "small", "copy2")
    assert {info.name: info for info in registry.models()}["copy2"].card["classes"][0] == "apple"
    assert started[1:] == [["copy2.h5"]]  # only the new version


def test_the_info_of_one_model_reads_only_its_file(models_dir, monkeypatch):
    started = children_started(monkeypatch)
    registry = Registry(models_dir)
    assert registry.info("tiny").available
    assert names(registry) == ["small", "tiny"]
    assert started == [["tiny.h5"], ["small.h5"]]


def check_that_breaks(condition, action):
    """The read check, in a child that does `action` when it opens a file whose name meets `condition`."""
    return textwrap.dedent(f"""
        import os, signal, time, h5py
        open_file = h5py.File
        def breaking_open(path, *args, **options):
            if {condition}:
                {action}
            return open_file(path, *args, **options)
        h5py.File = breaking_open
    """) + model_file.HDF5_READ_CHECK


def test_a_file_that_crashes_the_child_is_reported_and_the_others_are_read(registry, models_dir, monkeypatch):
    copy_model(models_dir, "tiny", "a_copy")
    copy_model(models_dir, "tiny", "crash")
    copy_model(models_dir, "tiny", "truncated")
    data = (models_dir / "tiny.h5").read_bytes()
    (models_dir / "truncated.h5").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(model_file, "HDF5_READ_CHECK", check_that_breaks(
        "'crash' in os.path.basename(path)", "os.kill(os.getpid(), signal.SIGSEGV)"))
    started = children_started(monkeypatch)
    info = {info.name: info for info in registry.models()}
    assert info["crash"].error == "crash.h5 is damaged: reading it crashes HDF5 (signal 11); copy it again, or train it again"
    assert info["truncated"].error.startswith("truncated.h5 is incomplete: ")  # read after the crash
    assert info["a_copy"].available and info["small"].available and info["tiny"].available
    # Files read before the crash keep their results; those after it go to a fresh child.
    assert started == [["a_copy.h5", "crash.h5", "small.h5", "tiny.h5", "truncated.h5"],
                       ["small.h5", "tiny.h5", "truncated.h5"]]
    assert names(registry) == ["a_copy", "crash", "small", "tiny", "truncated"] and len(started) == 2


def test_a_file_whose_reading_does_not_finish_is_reported_and_the_others_are_read(registry, models_dir, monkeypatch):
    copy_model(models_dir, "tiny", "hang")
    monkeypatch.setattr(model_file, "HDF5_READ_CHECK", check_that_breaks(
        "'hang' in os.path.basename(path)", "time.sleep(600)"))
    monkeypatch.setattr(model_file, "READ_TIMEOUT", 10)  # also the next child's to start and read the rest: ample
    started = children_started(monkeypatch)
    info = {info.name: info for info in registry.models()}
    assert info["hang"].error == "hang.h5 is damaged: reading it does not finish; copy it again, or train it again"
    assert info["small"].available and info["tiny"].available
    assert started == [["hang.h5", "small.h5", "tiny.h5"], ["small.h5", "tiny.h5"]]


def test_a_check_that_exits_with_an_error_gives_its_last_line_as_the_reason(registry, models_dir, monkeypatch):
    monkeypatch.setattr(model_file, "HDF5_READ_CHECK", "import sys; sys.exit('cannot open ' + sys.argv[1])")
    info = {info.name: info for info in registry.models()}
    assert info["small"].error == "small.h5 cannot be read: cannot open small.h5; copy it again, or train it again"  # no server paths
    assert info["tiny"].error == "tiny.h5 cannot be read: cannot open tiny.h5; copy it again, or train it again"


def save_retrained(models_dir) -> Path:
    """tiny's model with other weights, saved beside it: a file of the same size."""
    import keras

    retrained = keras.saving.load_model(models_dir / "tiny.h5", compile=False)
    retrained.set_weights([w + 0.5 for w in retrained.get_weights()])
    retrained.save(models_dir / ".tiny.new.h5")
    return models_dir / ".tiny.new.h5"


def test_a_file_of_the_same_size_and_time_moved_over_a_model_is_noticed(registry, models_dir):
    first = registry.load("tiny")
    new, old = save_retrained(models_dir), models_dir / "tiny.h5"
    assert new.stat().st_size == old.stat().st_size
    os.utime(new, ns=(old.stat().st_atime_ns, old.stat().st_mtime_ns))
    os.replace(new, old)
    assert registry.load("tiny") is not first


def test_a_model_copied_in_place_with_its_time_kept_is_noticed(registry, models_dir):
    # As `cp -p new.h5 models/tiny.h5` does: same file (inode), same size, the old time kept;
    # only the change time (ctime) tells.
    first = registry.load("tiny")
    new, old = save_retrained(models_dir), models_dir / "tiny.h5"
    before = old.stat()
    with open(old, "r+b") as f:
        f.write(new.read_bytes())
    os.utime(old, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = old.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert registry.load("tiny") is not first


def test_a_models_files_are_opened_only_as_the_version_checked(registry, models_dir):
    info = registry.info("tiny")
    for suffix in (".h5", ".json"):
        with registry.open_file(info, suffix) as file:
            assert file.read() == (models_dir / f"tiny{suffix}").read_bytes()
    shutil.copy(models_dir / "small.json", models_dir / "new.json")
    os.replace(models_dir / "new.json", models_dir / "tiny.json")  # not checked yet
    with pytest.raises(FileChanged):
        registry.open_file(info, ".json")
    registry.open_file(info, ".h5").close()  # the .h5 is still the version checked
    (models_dir / "tiny.h5").unlink()
    with pytest.raises(FileNotFoundError):
        registry.open_file(info, ".h5")


def test_loading_many_models_logs_no_tracing_warning(registry, models_dir, caplog):
    # Each model traces its own predict function once; TensorFlow counts them together, and
    # from the fifth in a row warned of "retracing", as if the app made a mistake.
    for n in range(6):
        for suffix in (".h5", ".json"):
            shutil.copy(models_dir / f"tiny{suffix}", models_dir / f"copy{n}{suffix}")
    for info in registry.models():
        registry.load(info.name)
    assert not [record for record in caplog.records if record.name == "tensorflow"]
    # TensorFlow gives up warning after five times in a process: the filter is checked itself too.
    said = logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, "5 out of the last 5 calls to <function> "
                             "triggered tf.function retracing. Tracing is expensive", None, None)
    assert not logging.getLogger("tensorflow").filter(said)


def test_default_name_prefers_setting_then_best_accuracy(registry, models_dir):
    assert registry.default_name("small") == "small"
    best = max(registry.models(), key=lambda info: info.card["evaluation"]["accuracy"]).name
    assert registry.default_name("absent") == best
    os.remove(models_dir / "small.json")
    assert registry.default_name("small") == "tiny"


def test_on_equal_accuracy_the_default_is_the_dashboards_first_the_lower_loss(registry, client, models_dir):
    for name, loss in (("small", 0.9), ("tiny", 0.5)):  # "tiny" is second by name, first by loss
        card = json.loads((models_dir / f"{name}.json").read_text())
        card["evaluation"] |= {"accuracy": 0.8, "loss": loss}
        (models_dir / f"{name}.json").write_text(json.dumps(card))
    assert registry.default_name("absent") == "tiny"
    page = client.get("/models").get_data(as_text=True)
    assert page.index(">tiny</a>") < page.index(">small</a>")


def test_default_name_reads_past_a_card_whose_evaluation_is_not_an_object(registry, models_dir):
    card = json.loads((models_dir / "small.json").read_text())
    card["evaluation"] = "n/a"
    (models_dir / "small.json").write_text(json.dumps(card))
    assert registry.default_name("absent") == "tiny"


def test_load_default_passes_over_models_that_fail_to_load(registry, models_dir):
    save_model_without_softmax(models_dir / "tiny.h5")  # "tiny" passes the file checks, fails at load
    assert registry.default_name("tiny") == "tiny"
    assert registry.load_default("tiny").name == "small"
    assert registry.default_name("tiny") == "small"  # now known
    (models_dir / "small.json").unlink()
    assert registry.load_default("tiny") is None


def test_a_change_of_the_model_that_requests_without_a_name_get_is_logged(registry, models_dir, caplog):
    assert registry.load_default("tiny").name == "tiny" and not caplog.records
    moved = shutil.move(models_dir / "tiny.h5", models_dir.parent / "tiny.h5")
    assert registry.load_default("tiny").name == "small"
    shutil.move(moved, models_dir / "tiny.h5")
    assert registry.load_default("tiny").name == "tiny"
    said = [record.getMessage() for record in caplog.records if record.name == "webapp.registry"]
    assert said == ["Requests that name no model now go to small, not tiny",
                    "Requests that name no model now go to tiny, not small"]


def test_loading_the_default_model_loads_only_it(registry, monkeypatch):
    calls = []
    real = registry_module._load_keras_model
    monkeypatch.setattr(registry_module, "_load_keras_model", lambda path: calls.append(path.name) or real(path))
    registry.load_default("small")
    assert calls == ["small.h5"]


def test_a_model_named_on_macos_is_found_by_its_name_as_typed(registry, models_dir):
    # Copied from a Mac, "modèle.h5" is written "e" and an accent (NFD); typed, "è" is one character.
    for suffix in (".h5", ".json"):
        shutil.copy2(models_dir / f"tiny{suffix}", models_dir / f"mode\u0300le{suffix}")
    assert registry.info("mod\u00e8le").name == registry.load("mod\u00e8le").name == "mode\u0300le"
    assert registry.default_name("mod\u00e8le") == "mode\u0300le"  # IMAGEAPP_DEFAULT_MODEL, typed
    assert listed_or_404(registry.models(), "mod\u00e8le").name == "mode\u0300le"


def test_unknown_names_never_touch_the_file_system_outside(registry):
    for name in ("../../etc/passwd", "/etc/passwd", "tiny/../small", "..", ""):
        with pytest.raises(UnknownModel):
            registry.load(name)


def test_a_card_that_no_model_here_can_answer_as_is_unavailable_before_any_load(models_dir, monkeypatch):
    # Found when listing, so /healthz and /api/models do not count it until a worker loads it.
    card = json.loads((models_dir / "tiny.json").read_text())
    for name, change in (("one_class", {"classes": ["only"]}), ("grey", {"input_shape": [16, 16, 1]})):
        (models_dir / f"{name}.json").write_text(json.dumps(card | change))
        (models_dir / f"{name}.h5").write_bytes((models_dir / "tiny.h5").read_bytes())
    monkeypatch.setattr(registry_module, "_load_keras_model", pytest.fail)
    info = {info.name: info for info in Registry(models_dir).models()}
    assert info["one_class"].error == "metrics card one_class.json lists one class; a classifier needs two or more"
    assert info["grey"].error == ("metrics card grey.json's input_shape has 1 channel, where models here take "
                                  "RGB images (3)")


def trained_elsewhere_snippets() -> list[str]:
    """The Python blocks of docs/web-app.md's "A model trained elsewhere"."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "web-app.md").read_text(encoding="utf-8")
    section = docs.split("### A model trained elsewhere")[1].split("\n## ")[0]
    return [block.split("```")[0] for block in section.split("```python\n")[1:]]


def test_a_model_trained_elsewhere_is_served_as_docs_web_app_md_says(tmp_path, monkeypatch):
    import keras

    snippet = trained_elsewhere_snippets()[0]
    # A notebook's network, trained on pixels divided by 255.
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    notebook = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(features))
    notebook.save(tmp_path / "cifar10_notebook.h5")
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    exec(snippet, {})

    served = Registry(tmp_path / "models").load("cifar10_notebook")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert served.classes[3] == "cat"
    np.testing.assert_allclose(served.predict(pixels), notebook.predict(pixels / 255, verbose=0), rtol=1e-5, atol=1e-6)


def test_the_layers_docs_give_for_other_notebooks_do_what_they_say(tmp_path):
    import keras

    layers = {"keras": keras}
    exec(trained_elsewhere_snippets()[1], layers)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.float32)
    for layer, preprocess in ((layers["mobilenet"], keras.applications.mobilenet_v2.preprocess_input),
                              (layers["caffe"], keras.applications.vgg16.preprocess_input)):
        np.testing.assert_allclose(layer(pixels), preprocess(pixels.copy()), atol=1e-4)
    np.testing.assert_allclose(layers["grey"](pixels)[..., 0], pixels @ [0.299, 0.587, 0.114], rtol=1e-5)
    np.testing.assert_allclose(layers["two_classes"](np.array([[0.2], [1.0]])), [[0.8, 0.2], [0.0, 1.0]], atol=1e-6)
    z = np.array([[-2.0], [3.0]])  # logits: softmax([0, z]) is [1 - sigmoid(z), sigmoid(z)]
    np.testing.assert_allclose(keras.layers.Softmax()(layers["from_logit"](z))[:, 1], 1 / (1 + np.exp(-z[:, 0])),
                               rtol=1e-5)

    # A cats-vs-dogs notebook on VGG16's preprocessing, wrapped with them, is served as two classes.
    inputs = keras.Input((16, 16, 3))
    notebook = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs)))
    served = keras.Sequential([keras.Input((16, 16, 3)), layers["caffe"], notebook, layers["two_classes"]])
    served.save(tmp_path / "cats_dogs.h5")
    (tmp_path / "cats_dogs.json").write_text(json.dumps({"classes": ["cat", "dog"], "input_shape": [16, 16, 3]}))
    model = Registry(tmp_path).load("cats_dogs")
    image = pixels[:1, ...].repeat(4, axis=1).repeat(4, axis=2)  # 16 x 16
    dog = notebook.predict(keras.applications.vgg16.preprocess_input(image.copy()), verbose=0)[0, 0]
    np.testing.assert_allclose(model.predict(image.astype(np.uint8))[0], [1 - dog, dog], rtol=1e-4, atol=1e-5)


def test_a_keras_format_file_is_listed_as_one_to_import_unless_an_h5_of_its_name_is_there(registry, models_dir):
    import keras

    model = keras.saving.load_model(models_dir / "tiny.h5")
    model.save(models_dir / "notebook.keras")
    model.save(models_dir / "tiny.keras")  # beside tiny.h5: the .h5 is served, the .keras passed over
    info = {info.name: info for info in registry.models()}
    assert sorted(info) == ["notebook", "small", "tiny"] and info["tiny"].available
    assert info["notebook"].error == ("notebook.keras is in Keras's own .keras format, and the app serves .h5 files "
                                      "with a card beside them: python -m trainer import makes one of it, as "
                                      'docs/web-app.md says ("A model trained elsewhere"); and no metrics card '
                                      "(notebook.json)")
    (models_dir / "notebook.json").write_text((models_dir / "tiny.json").read_text())
    assert registry.info("notebook").error.endswith('("A model trained elsewhere")')


def test_a_notebook_with_preprocessing_on_tensors_and_augmentation_is_rebuilt_as_docs_say(tmp_path, monkeypatch):
    import keras

    layers = {"keras": keras}
    exec(trained_elsewhere_snippets()[1], layers)
    # The Keras tutorials' kind: preprocess_input on the input tensor, an augmentation block, a head.
    inputs = keras.Input((224, 224, 3))
    augmented = keras.Sequential([keras.layers.RandomFlip(), keras.layers.RandomContrast(0.2)])(
        keras.applications.mobilenet_v2.preprocess_input(inputs))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=8)(augmented))
    notebook = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(features))
    notebook.save(tmp_path / "mobilenet_notebook.keras")
    monkeypatch.chdir(tmp_path)
    exec(trained_elsewhere_snippets()[2], layers)

    layers["served"].save(tmp_path / "rebuilt.h5")
    (tmp_path / "rebuilt.json").write_text(json.dumps({"classes": ["a", "b", "c"], "input_shape": [224, 224, 3]}))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_allclose(Registry(tmp_path).load("rebuilt").predict(pixels),
                               notebook.predict(pixels.astype(np.float32), verbose=0), rtol=1e-4, atol=1e-6)
