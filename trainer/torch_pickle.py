"""Read a PyTorch state dict (``.pth``) into numpy arrays without importing torch.

A ``.pth`` file is a pickle, and unpickling runs whatever callables the file
names. The unpickler here resolves only the handful of names a state dict of
tensors needs and refuses every other one, so a hostile file fails with
``UnsafePickleError`` before anything from it runs.

Both of PyTorch's layouts are read:

* legacy (torch < 1.6): pickles of the magic number, the protocol version and
  ``sys_info``; the main pickle, whose persistent ids name storages; a pickle
  of the storage keys; then each storage's bytes, preceded by its int64
  element count, in that order.
* zip (torch >= 1.6): ``<root>/data.pkl`` is the main pickle and storage
  ``key`` is the raw bytes of ``<root>/data/<key>``.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import zipfile

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch's typed storage classes, as the pickle names them, and their element type.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names something a plain state dict of tensors never needs."""


class _Storage:
    """A storage named by the main pickle; its bytes come later in the file."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.array = None  # filled in once the bytes have been read


class _StorageView:
    """A slice of a storage (legacy files could pickle those)."""

    def __init__(self, storage, offset):
        self.storage, self.offset = storage, offset


class _Tensor:
    """What ``_rebuild_tensor_v2`` describes: a strided view of a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def to_numpy(self):
        storage, offsets = self.storage, [self.offset]
        if isinstance(storage, _StorageView):
            storage, offsets = storage.storage, offsets + [storage.offset]
        # as_strided reads whatever memory these numbers point at, so a hostile file's negative
        # offset or stride would read outside the storage, or crash the process.
        numbers = (*offsets, *self.size, *self.stride)
        if len(self.size) != len(self.stride) or not all(_whole(n) and n >= 0 for n in numbers):
            raise ValueError("a tensor's offset, sizes and strides must be whole numbers, not negative")
        if not isinstance(storage, _Storage) or storage.array is None:
            raise ValueError("a tensor's storage is missing from the file")
        flat, offset = storage.array, sum(offsets)
        # A state dict's tensors never share elements, so no tensor has more than its storage
        # (a zero stride would make a tiny storage a huge array), nor a number larger than it.
        if math.prod(self.size) > flat.size or any(n > max(flat.size, 1) for n in numbers):
            raise ValueError("a tensor reaches past the end of its storage")
        if all(self.size):  # an empty tensor touches no element
            last = offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if last >= flat.size:
                raise ValueError("a tensor reaches past the end of its storage")
        itemsize = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=self.size,
            strides=[s * itemsize for s in self.stride], writeable=False)
        return np.array(view, dtype=flat.dtype.newbyteorder("="))  # own, native-order copy


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): dtype for name, dtype in STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ``ALLOWED_GLOBALS``; records the storages it meets."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: only a state dict of plain "
                "tensors can be read from a .pth file") from None

    def persistent_load(self, saved_id):
        # ('storage', storage_type, key, location, numel[, view_metadata]). Another is no danger,
        # as nothing is called for it, but a damaged file, or no pickle at all (a PNG's first bytes
        # read as a persistent id): said as such, not as unsafe.
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id!r}")
        dtype, key = saved_id[1:3]
        if not isinstance(dtype, type) or not issubclass(dtype, np.generic):
            raise pickle.UnpicklingError(f"storage {key!r} has no known element type")
        storage = self.storages.setdefault(key, _Storage(dtype))
        view = saved_id[5] if len(saved_id) > 5 else None
        if view is None:
            return storage
        _view_key, offset, _view_numel = view
        return _StorageView(storage, offset)


def _state_dict(obj):
    """The unpickled object as ``{name: array}``, or an error saying why not."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a state dict, the file holds a {type(obj).__name__}")
    arrays = {}
    for name, value in obj.items():
        if not isinstance(value, _Tensor):
            raise ValueError(f"state dict entry {name!r} is not a tensor")
        arrays[name] = value.to_numpy()
    return arrays


def _load_legacy(f):
    try:
        magic = _RestrictedUnpickler(f).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError):  # pickle's words for another kind of file
        magic = None
    if magic != LEGACY_MAGIC_NUMBER:
        raise ValueError("not a PyTorch .pth file")
    protocol = _RestrictedUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise ValueError(f"unsupported legacy .pth protocol version {protocol!r}")
    sys_info = _RestrictedUnpickler(f).load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise ValueError("only little-endian legacy .pth files are supported")
    unpickler = _RestrictedUnpickler(f)
    result = unpickler.load()
    keys = _RestrictedUnpickler(f).load()
    for key in keys:
        storage = unpickler.storages[key]
        (numel,) = np.frombuffer(f.read(8), dtype="<i8")
        data = f.read(int(numel) * storage.dtype.itemsize)
        if len(data) != numel * storage.dtype.itemsize:
            raise ValueError(f"the .pth file ends inside storage {key!r}")
        storage.array = np.frombuffer(data, dtype=storage.dtype)
    return _state_dict(result)


def _load_zip(f):
    with zipfile.ZipFile(f) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError("a zip .pth file should hold exactly one */data.pkl")
        root = pickles[0][: -len("data.pkl")]
        names = set(archive.namelist())
        if f"{root}byteorder" in names and archive.read(f"{root}byteorder") != b"little":
            raise ValueError("big-endian .pth files are not supported")
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])))
        result = unpickler.load()
        for key, storage in unpickler.storages.items():
            data = archive.read(f"{root}data/{key}")
            storage.array = np.frombuffer(data, dtype=storage.dtype)
    return _state_dict(result)


def load_state_dict(path):
    """Read the state dict saved at ``path`` as ``{name: numpy array}``."""
    with open(path, "rb") as f:
        if zipfile.is_zipfile(f):
            f.seek(0)
            return _load_zip(f)
        f.seek(0)
        return _load_legacy(f)
