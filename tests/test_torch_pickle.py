"""The torch-free .pth reader, on files written here byte by byte the way torch writes them."""

import collections
import io
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from trainer.torch_pickle import (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION,
                                  UnsafePickleError, load_state_dict)


class FakeStorage:
    """Stands for a torch storage: pickled as a persistent id, its bytes written apart."""

    def __init__(self, kind, key, values):
        self.kind, self.key, self.values = kind, key, values


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, self.args + (False, collections.OrderedDict())


class StoragePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.kind, obj.key, "cpu", obj.values.size, None)
        return None


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of a `torch` module for pickle to name torch's globals, as torch does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def sample_state(torch):
    """A state dict with a shared storage, a transposed view, an offset and an int64 scalar."""
    floats = FakeStorage(torch.FloatStorage, "140001", np.arange(8, dtype="<f4"))
    counter = FakeStorage(torch.LongStorage, "140002", np.array([7], dtype="<i8"))
    state = collections.OrderedDict([
        ("conv.weight", FakeTensor(floats, 0, (2, 3), (3, 1))),
        ("conv.weight_t", FakeTensor(floats, 0, (3, 2), (1, 3))),
        ("bn.bias", FakeTensor(floats, 6, (2,), (1,))),
        ("bn.num_batches_tracked", FakeTensor(counter, 0, (), ())),
    ])
    return state, [floats, counter]


def main_pickle(state):
    buffer = io.BytesIO()
    StoragePickler(buffer, protocol=2).dump(state)
    return buffer.getvalue()


def write_legacy(path, main, storages, little_endian=True):
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION,
                       {"protocol_version": LEGACY_PROTOCOL_VERSION, "little_endian": little_endian,
                        "type_sizes": {"short": 2, "int": 4, "long": 8}}):
            pickle.dump(header, f, protocol=2)
        f.write(main)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for storage in storages:
            f.write(np.int64(storage.values.size).astype("<i8").tobytes())
            f.write(storage.values.tobytes())


def check_sample(arrays):
    assert list(arrays) == ["conv.weight", "conv.weight_t", "bn.bias", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(arrays["conv.weight"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(arrays["conv.weight_t"], [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(arrays["bn.bias"], [6, 7])
    assert arrays["conv.weight"].dtype == np.float32
    assert arrays["bn.num_batches_tracked"].shape == ()
    assert arrays["bn.num_batches_tracked"] == 7
    assert arrays["bn.num_batches_tracked"].dtype == np.int64


def test_reads_legacy_file(tmp_path, fake_torch):
    state, storages = sample_state(fake_torch)
    path = tmp_path / "legacy.pth"
    write_legacy(path, main_pickle(state), storages)
    check_sample(load_state_dict(path))


def write_zip(path, main, storages, byteorder="little"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", main)
        archive.writestr("archive/byteorder", byteorder)
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.values.tobytes())


def test_reads_zip_file(tmp_path, fake_torch):
    state, storages = sample_state(fake_torch)
    path = tmp_path / "zipped.pth"
    write_zip(path, main_pickle(state), storages)
    check_sample(load_state_dict(path))


def test_refuses_big_endian_files(tmp_path, fake_torch):
    """Their numbers would be read as little-endian garbage, so they are refused."""
    state, storages = sample_state(fake_torch)
    for storage in storages:
        storage.values = storage.values.astype(storage.values.dtype.newbyteorder(">"))
    write_legacy(tmp_path / "legacy.pth", main_pickle(state), storages, little_endian=False)
    with pytest.raises(ValueError, match="only little-endian"):
        load_state_dict(tmp_path / "legacy.pth")
    write_zip(tmp_path / "zipped.pth", main_pickle(state), storages, byteorder="big")
    with pytest.raises(ValueError, match="big-endian .pth files are not supported"):
        load_state_dict(tmp_path / "zipped.pth")


class Exploit:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os
        return os.system, (self.command,)


@pytest.mark.parametrize("where", ["header", "main"])
def test_refuses_pickle_that_calls_anything_else(tmp_path, where):
    marker = tmp_path / "pwned"
    exploit = pickle.dumps(Exploit(f"touch {marker}"), protocol=2)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        if where == "main":
            for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {}):
                pickle.dump(header, f, protocol=2)
        f.write(exploit)
    with pytest.raises(UnsafePickleError, match="refusing to load (os|posix).system"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [
    ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"), ("subprocess", "Popen"),
    ("collections", "Counter"), ("numpy", "frombuffer"), ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ("torch", "load"),
])
def test_refuses_every_global_but_the_few_a_state_dict_needs(tmp_path, module, name):
    # An allow-list, not a list of known dangers: a pickle may call any function it names.
    path = tmp_path / "evil.pth"
    path.write_bytes(b"c%s\n%s\n)R." % (module.encode(), name.encode()))  # GLOBAL, (), REDUCE, STOP
    with pytest.raises(UnsafePickleError, match=f"refusing to load {module}.{name}:"):
        load_state_dict(path)


@pytest.mark.parametrize("content", [pickle.dumps({"weights": [1, 2, 3]}),  # another pickle
                                     b"\xff\xd8\xff\xe0 a JPEG", b"\x89HDF\r\n\x1a\n", b"\x89PNG\r\n\x1a\n", b""])
def test_refuses_other_files_in_plain_words(tmp_path, content):
    path = tmp_path / "not_torch.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="^not a PyTorch .pth file$"):  # not pickle's "invalid load key, '\\xff'"
        load_state_dict(path)


@pytest.mark.parametrize("offset, size, stride", [
    (-1, (4,), (1,)),          # starts before the storage
    (7, (2,), (1,)),           # ends past it
    (0, (2,), (-100_000_000,)),  # walks backwards out of the process's memory
    (0, (2, 2), (1,)),         # more sizes than strides
    (0.5, (2,), (1,)),         # not a whole number
    (0, (60_000, 60_000), (0, 0)),  # a 14 GB array made of one element
    (0, (8, 8, 8), (0, 0, 0)),  # more elements than the storage, though no size or stride is
    (0, (1,), (2 ** 70,)),     # a stride beyond any memory
])
def test_refuses_tensors_outside_their_storage(tmp_path, fake_torch, offset, size, stride):
    floats = FakeStorage(fake_torch.FloatStorage, "1", np.arange(8, dtype="<f4"))
    state = collections.OrderedDict(weight=FakeTensor(floats, offset, size, stride))
    path = tmp_path / "hostile.pth"
    write_legacy(path, main_pickle(state), [floats])
    with pytest.raises(ValueError, match="storage|whole numbers"):
        load_state_dict(path)
