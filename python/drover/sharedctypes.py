"""Value, Array, RawValue and RawArray of the "drover" start method, over
libdrover's shared memory blocks (drover._drover.Shared, docs/API.md).

As multiprocessing.sharedctypes: RawValue and RawArray are ctypes objects
whose memory is the block (ctypes' from_buffer over its mapping), Value
and Array wrap them with a lock (multiprocessing's Synchronized classes).
They travel to a drover Process in its arguments as the block's handle,
and the child attaches it again. On the block's home node that gives the
same ctypes object over the same bytes; on another node there is no
mapping, and the child gets a proxy with the object's interface (value,
indexing and slices, len, iteration, raw and value of c_char arrays,
fields of structures) whose every read and write is one remote operation
on the home node, atomic on its own. As in multiprocessing, only the lock
makes a read-modify-write (``v.value += 1``) safe.
"""

import ctypes
import multiprocessing
import operator
import weakref
from multiprocessing import reduction, sharedctypes
from multiprocessing.context import assert_spawning

from drover import _drover
from drover.context import _pass_to_child

__all__ = ["RawValue", "RawArray", "Value", "Array", "synchronized"]

typecode_to_type = sharedctypes.typecode_to_type

_ForkingPickler = reduction.ForkingPickler


class _Block:
    """A libdrover block under a ctypes object (its _wrapper, in the place
    of multiprocessing.heap.BufferWrapper)."""

    def __init__(self, size=None, *, shared=None):
        self._s = shared if shared is not None else _drover.Shared(size)

    def __reduce__(self):
        _pass_to_child(self)
        return _attach_block, (self._s.handle(),)

    def create_memoryview(self):
        return memoryview(self._s)

    def mapped(self):
        return self._s.mapped()

    def size(self):
        return self._s.size()

    def read(self, offset, length):
        return self._s.read(offset, length)

    def write(self, offset, data):
        self._s.write(offset, data)


def _attach_block(handle):
    return _Block(shared=_drover.Shared.attach(handle))


# ---- ctypes objects over a block, and how they travel ----

_mp_reduce_ctype = sharedctypes.reduce_ctype


def reduce_ctype(obj):
    """Pickle a ctypes object of a drover block as the block and its type;
    multiprocessing's objects as multiprocessing does (both register their
    types with ForkingPickler, whose table has one entry per type)."""
    block = getattr(obj, "_wrapper", None)
    if not isinstance(block, _Block):
        return _mp_reduce_ctype(obj)
    _check_travel(obj, block)
    if isinstance(obj, ctypes.Array):
        return rebuild_ctype, (obj._type_, block, obj._length_)
    return rebuild_ctype, (type(obj), block, None)


def rebuild_ctype(type_, block, length):
    """The object over block: a ctypes object where the block is mapped,
    a proxy on another node."""
    if length is not None:
        type_ = type_ * length
    _ForkingPickler.register(type_, reduce_ctype)
    if not block.mapped():
        return _proxy(type_, block)
    obj = type_.from_buffer(block.create_memoryview())
    obj._wrapper = block
    return obj


# multiprocessing's rebuild_ctype registers its reducer by this name: keep
# ours in the table for both kinds of object.
sharedctypes.reduce_ctype = reduce_ctype


def _check_travel(obj, block):
    """Objects travel only into a starting Process, but those a Manager
    made (marked _drover_managed), which pickle anywhere."""
    if getattr(obj, "_drover_managed", False):
        block._drover_managed = True
    else:
        assert_spawning(obj)


def _new_value(type_):
    return rebuild_ctype(type_, _Block(ctypes.sizeof(type_)), None)


def RawValue(typecode_or_type, *args):
    """A ctypes object in shared memory (zeroed, then initialised with
    args as the type's constructor takes them)."""
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    obj = _new_value(type_)
    obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer):
    """A ctypes array in shared memory: of that many zeros, or of the
    initializer's items."""
    type_ = typecode_to_type.get(typecode_or_type, typecode_or_type)
    if isinstance(size_or_initializer, int):
        return _new_value(type_ * size_or_initializer)
    result = _new_value(type_ * len(size_or_initializer))
    result.__init__(*size_or_initializer)
    return result


def _lock_for(lock, ctx):
    if lock in (True, None):
        ctx = ctx or multiprocessing.get_context("drover")
        lock = ctx.RLock()
    if not hasattr(lock, "acquire"):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return lock


def Value(typecode_or_type, *args, lock=True, ctx=None):
    """RawValue with a lock (lock=True: a new RLock of ctx; False: none,
    the raw object; or a lock object to use)."""
    obj = RawValue(typecode_or_type, *args)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock, ctx), ctx=ctx)


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    """RawArray with a lock, as Value."""
    obj = RawArray(typecode_or_type, size_or_initializer)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock, ctx), ctx=ctx)


# ---- the synchronized wrappers (multiprocessing's, travelling so that
# the child rebuilds them over a proxy too) ----

class _Travel:
    def __reduce__(self):
        if getattr(self, "_drover_managed", False):
            self._obj._drover_managed = True
        else:
            assert_spawning(self)
        return synchronized, (self._obj, self._lock)


class Synchronized(_Travel, sharedctypes.Synchronized):
    pass


class SynchronizedArray(_Travel, sharedctypes.SynchronizedArray):
    pass


class SynchronizedString(_Travel, sharedctypes.SynchronizedString):
    pass


_class_cache = weakref.WeakKeyDictionary()


def synchronized(obj, lock=None, ctx=None):
    """A Synchronized wrapper of obj (a ctypes object or a proxy)."""
    assert not isinstance(obj, sharedctypes.SynchronizedBase), \
        "object already synchronized"
    type_ = obj._type if isinstance(obj, _Proxy) else type(obj)
    if issubclass(type_, ctypes._SimpleCData):
        return Synchronized(obj, lock, ctx)
    if issubclass(type_, ctypes.Array):
        if type_._type_ is ctypes.c_char:
            return SynchronizedString(obj, lock, ctx)
        return SynchronizedArray(obj, lock, ctx)
    try:
        scls = _class_cache[type_]
    except KeyError:
        d = {f[0]: sharedctypes.make_property(f[0]) for f in type_._fields_}
        scls = _class_cache[type_] = type(
            "Synchronized" + type_.__name__,
            (_Travel, sharedctypes.SynchronizedBase), d)
    return scls(obj, lock, ctx)


# ---- proxies: the objects of a block of another node ----

def _bytes_of(obj):
    return ctypes.string_at(ctypes.addressof(obj), ctypes.sizeof(obj))


class _Proxy:
    """The interface of a ctypes object whose bytes live on another node:
    each access reads or writes them there."""

    def __init__(self, type_, block):
        self._type = type_
        self._wrapper = block

    def __reduce__(self):
        _check_travel(self, self._wrapper)
        if issubclass(self._type, ctypes.Array):
            return rebuild_ctype, (self._type._type_, self._wrapper,
                                   self._type._length_)
        return rebuild_ctype, (self._type, self._wrapper, None)

    def _copy(self, offset=0, type_=None):
        """A local ctypes copy of type_ (the whole type by default) read at
        offset."""
        type_ = type_ or self._type
        return type_.from_buffer_copy(
            self._wrapper.read(offset, ctypes.sizeof(type_)))

    def _store(self, offset, obj, length=None):
        """Write ctypes object obj's bytes (length of them) at offset."""
        data = _bytes_of(obj)
        self._wrapper.write(offset, data if length is None else data[:length])

    def __repr__(self):
        return "<drover proxy of %s on another node>" % self._type.__name__


class _ValueProxy(_Proxy):
    """A simple ctypes value (c_int, c_double, c_char...)."""

    @property
    def value(self):
        return self._copy().value

    @value.setter
    def value(self, v):
        self._store(0, self._type(v))


def _field_property(name, field):
    def get(self):
        return getattr(self._copy(), name)

    def set(self, v):
        # Only the field's bytes go back: a field of its own changes alone.
        tmp = self._copy()
        setattr(tmp, name, v)
        data = _bytes_of(tmp)
        self._wrapper.write(field.offset,
                            data[field.offset:field.offset + field.size])
    return property(get, set)


_struct_proxies = weakref.WeakKeyDictionary()


def _struct_proxy(type_):
    try:
        return _struct_proxies[type_]
    except KeyError:
        d = {f[0]: _field_property(f[0], getattr(type_, f[0]))
             for f in type_._fields_}
        cls = _struct_proxies[type_] = type(
            "Proxy" + type_.__name__, (_Proxy,), d)
        return cls


class _ArrayProxy(_Proxy):
    """A ctypes array: items and slices read and write only their range."""

    def __init__(self, type_, block):
        super().__init__(type_, block)
        self._item = type_._type_
        self._isize = ctypes.sizeof(self._item)
        self._length = type_._length_

    def __len__(self):
        return self._length

    def _index(self, i):
        i = operator.index(i)
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError("invalid index")
        return i

    def _range(self, s):
        """The indices of slice s, and the span [lo, hi) they lie in."""
        idx = range(*s.indices(self._length))
        if not idx:
            return idx, 0, 0
        return idx, min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            idx, lo, hi = self._range(i)
            if not idx:
                return (self._item * 0)()[:]
            tmp = self._copy(lo * self._isize, self._item * (hi - lo))
            stop = idx.stop - lo
            return tmp[idx.start - lo:stop if stop >= 0 else None:idx.step]
        i = self._index(i)
        return self._copy(i * self._isize, self._item * 1)[0]

    def __setitem__(self, i, value):
        if not isinstance(i, slice):
            i = self._index(i)
            tmp = (self._item * 1)()
            tmp[0] = value
            self._store(i * self._isize, tmp)
            return
        idx = range(*i.indices(self._length))
        values = value if hasattr(value, "__len__") else list(value)
        if len(values) != len(idx):
            raise ValueError("Can only assign sequence of same size")
        if idx.step == 1:
            tmp = (self._item * len(idx))()
            tmp[:] = values
            if idx:
                self._store(idx.start * self._isize, tmp)
            return
        for k, v in zip(idx, values):
            self[k] = v

    def __iter__(self):
        return iter(list(self._copy()))


class _CharArrayProxy(_ArrayProxy):
    """A c_char array: bytes, with raw and value as ctypes has them."""

    @property
    def raw(self):
        return self._copy().raw

    @raw.setter
    def raw(self, v):
        tmp = self._copy()
        tmp.raw = v
        self._store(0, tmp, len(v))

    @property
    def value(self):
        return self._copy().value

    @value.setter
    def value(self, v):
        tmp = self._copy()
        tmp.value = v
        self._store(0, tmp, min(len(v) + 1, self._length))


class _WcharArrayProxy(_ArrayProxy):
    """A c_wchar array: value is its text up to the first NUL."""

    @property
    def value(self):
        return self._copy().value

    @value.setter
    def value(self, v):
        tmp = self._copy()
        tmp.value = v
        n = min(len(v) + 1, self._length) * self._isize
        self._store(0, tmp, n)


def _proxy(type_, block):
    """A proxy of a type_ object over block (read and write only)."""
    if issubclass(type_, ctypes.Array):
        if type_._type_ is ctypes.c_char:
            return _CharArrayProxy(type_, block)
        if type_._type_ is ctypes.c_wchar:
            return _WcharArrayProxy(type_, block)
        return _ArrayProxy(type_, block)
    if issubclass(type_, ctypes._SimpleCData):
        return _ValueProxy(type_, block)
    if issubclass(type_, (ctypes.Structure, ctypes.Union)):
        return _struct_proxy(type_)(type_, block)
    raise TypeError("drover: no proxy for a %s of another node"
                    % type_.__name__)
