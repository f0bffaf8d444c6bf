"""Reading an .npz archive without trusting it: headers first, data only once its size is known.

``np.load`` trusts an archive: a forged ``.npy`` header claiming shape ``(2**40,)`` makes
it allocate terabytes before it finds the data missing, and a member may hold pickled
objects. :class:`NpzMembers` opens the archive with :mod:`zipfile`, reads only the
``.npy`` headers (at most ``MAX_HEADER`` bytes each) and checks every member's declared
shape and dtype against the bytes the member really holds. Data is read afterwards,
member by member, and never more bytes than the member and the whole file hold, so a
load allocates at most about the file's size. Every fault raises :class:`InvalidFile`
with the reason; the caller adds the file's name.
"""
from __future__ import annotations

import math
import struct
import zipfile

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
EOCD_MAGIC = b"PK\x05\x06"
EOCD_SIZE = 22
MAX_HEADER = 4096
TEXT, FLOAT = "text", "float"

# What a malformed zip entry or .npy header can raise from zipfile or numpy's parser.
_READ_ERRORS = (ValueError, TypeError, EOFError, OSError, zipfile.BadZipFile, SyntaxError, RecursionError,
                OverflowError, UnicodeDecodeError, NotImplementedError)


class InvalidFile(ValueError):
    """The archive is not what was expected; the message is the reason."""


class _Member:
    __slots__ = ("info", "shape", "dtype", "offset", "nbytes")

    def __init__(self, info, shape, dtype, offset, nbytes):
        self.info, self.shape, self.dtype, self.offset, self.nbytes = info, shape, dtype, offset, nbytes


def _sniff(handle, size, max_members) -> None:
    """The magic bytes, then the member count of the end-of-archive record, read before
    :class:`zipfile.ZipFile` builds one object per member (a forged count would cost
    memory out of proportion to the file)."""
    start = handle.read(8)
    if start.startswith(NPY_MAGIC):
        raise InvalidFile("it is a single .npy array, not an .npz archive")
    if not start.startswith(ZIP_MAGIC):
        raise InvalidFile("it is not an .npz (zip) archive")
    tail_start = max(0, size - EOCD_SIZE - 65535)
    handle.seek(tail_start)
    tail = handle.read()
    handle.seek(0)
    at = tail.rfind(EOCD_MAGIC)
    if at < 0 or len(tail) - at < EOCD_SIZE:
        raise InvalidFile("unreadable archive (no end-of-archive record: truncated)")
    n_members = struct.unpack_from("<H", tail, at + 10)[0]
    if n_members > max_members:
        raise InvalidFile(f"the archive lists {n_members} members, expected at most {max_members}")


def _header(zf, info, archive_size, kind):
    """Shape, dtype and data offset of the .npy member ``info``, checked against its size."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        raise InvalidFile(f"member {name!r} is compressed; fastgrad writes (and reads) stored members only")
    if info.file_size > archive_size:
        raise InvalidFile(f"member {name!r} claims {info.file_size} bytes, more than the whole file "
                          f"({archive_size} bytes): truncated or forged")
    with zf.open(info) as member:
        major, _ = np.lib.format.read_magic(member)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=MAX_HEADER)
        elif major == 2:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=MAX_HEADER)
        else:
            raise InvalidFile(f"member {name!r} has .npy format version {major}, expected 1 or 2")
        offset = member.tell()
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidFile(f"member {name!r} has an invalid shape {shape!r}")
    if fortran and len(shape) > 1:
        raise InvalidFile(f"member {name!r} is stored in Fortran order; fastgrad writes C order")
    if kind == TEXT and not (dtype.kind == "U" and shape == ()):
        raise InvalidFile(f"member {name!r} must be a text scalar, got dtype {dtype.str} and shape {shape}")
    if kind == FLOAT and not (dtype.kind == "f" and dtype.itemsize in (4, 8)):
        raise InvalidFile(f"member {name!r} must hold float32 or float64, got dtype {dtype.str}")
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise InvalidFile(f"member {name!r} declares shape {shape} of {dtype.str} ({nbytes} bytes) but holds "
                          f"{info.file_size - offset} bytes of data")
    return _Member(info, shape, dtype, offset, nbytes)


class NpzMembers:
    """The members of an .npz archive, by name (without ``.npy``), headers checked on opening.

    ``kinds``: name -> ``"text"`` (a 0-d unicode array) or ``"float"`` (float32/float64 of
    any shape); ``required``: the names that must be present. Members not in ``kinds``
    are refused. Use as a context manager; :meth:`shape` and :meth:`dtype` read nothing,
    :meth:`text` and :meth:`array` read one member's data.
    """

    def __init__(self, path, kinds: dict, required):
        self._handle = open(path, "rb")
        try:
            size = self._handle.seek(0, 2)
            self._handle.seek(0)
            _sniff(self._handle, size, max_members=len(kinds))
            self._zip = zipfile.ZipFile(self._handle)
            self._members = {}
            for info in self._zip.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if name not in kinds or name in self._members:
                    raise InvalidFile(f"unexpected member {info.filename!r} (expected {sorted(kinds)})")
                self._members[name] = _header(self._zip, info, size, kinds[name])
            self.expect(kinds, required)
        except _READ_ERRORS as exc:
            self.close()
            if isinstance(exc, InvalidFile):
                raise
            raise InvalidFile(f"unreadable archive ({type(exc).__name__}: {exc})") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def expect(self, kinds, required) -> None:
        """Check the members against a narrower set (e.g. once the format version is known)."""
        unexpected = sorted(set(self._members) - set(kinds))
        if unexpected:
            raise InvalidFile(f"unexpected member(s) {unexpected} (expected {sorted(kinds)})")
        missing = sorted(set(required) - set(self._members))
        if missing:
            raise InvalidFile(f"missing member(s) {missing}: truncated or not written by fastgrad")

    def __contains__(self, name) -> bool:
        return name in self._members

    def shape(self, name) -> tuple:
        return self._members[name].shape

    def dtype(self, name) -> np.dtype:
        return self._members[name].dtype.newbyteorder("=")

    def _read(self, name):
        m = self._members[name]
        try:
            with self._zip.open(m.info) as member:
                member.read(m.offset)
                data = member.read(m.nbytes)
                member.read(1)  # reaching the end makes zipfile check the CRC
        except _READ_ERRORS as exc:
            raise InvalidFile(f"member {name!r} is unreadable ({type(exc).__name__}: {exc})") from None
        if len(data) != m.nbytes:
            raise InvalidFile(f"member {name!r} is truncated ({len(data)} of {m.nbytes} bytes)")
        return np.frombuffer(data, dtype=m.dtype).reshape(m.shape)

    def text(self, name) -> str:
        """A text member as a Python string."""
        return str(self._read(name).item())

    def array(self, name) -> np.ndarray:
        """A float member as a writeable, C-contiguous array in native byte order."""
        arr = self._read(name)
        return np.array(arr, dtype=self.dtype(name), order="C")
