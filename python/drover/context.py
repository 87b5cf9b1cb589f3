"""The "drover" start method: its context, Process and Popen.

Popen pickles the process object as spawn does (preparation data, then
the process) and starts libdrover's task "dv_python_process" on those
bytes; in the child (a fork of the interpreter made when drover was
imported) _child_main() prepares the main module as spawn does and runs
the process's _bootstrap(). Queue, JoinableQueue and SimpleQueue are in
drover.queues, Pipe in drover.connection, Event, Lock, RLock, Condition,
Semaphore, BoundedSemaphore and Barrier in drover.synchronize, Value,
Array, RawValue and RawArray in drover.sharedctypes, Manager in
drover.managers; the other objects are not there yet and raise
NotSupportedError.
"""

import fcntl
import functools
import io
import multiprocessing
import os
import stat
import sys
import threading
import types
import traceback
from multiprocessing import context, process, reduction, spawn, util

# Imported here, in the interpreter every child is a fork of, rather than
# in each child: spawn.prepare() runs the main script with runpy.run_path,
# which imports pkgutil (and with it typing), 4 ms a process otherwise.
import pkgutil  # noqa: F401
import runpy  # noqa: F401

from drover import _drover, mainscript
from drover.nodes import Placement, placement_for

__all__ = ["DroverContext", "DroverProcess", "NotSupportedError"]


class NotSupportedError(NotImplementedError):
    """A part of multiprocessing the drover start method lacks so far."""


def _unsupported(what):
    return NotSupportedError(
        "drover: %s is not supported by the 'drover' start method yet "
        "(docs/PYTHON.md lists what is)" % what)


def _pass_to_child(obj, undo=None, keep=None):
    """Called by __getstate__ of an object that travels as a libdrover
    handle: only while a drover Process is being started (as
    multiprocessing's objects only travel by inheritance), and the Popen
    keeps obj alive until the process has ended, so that the child can
    attach it even when the parent drops it at once (keep, when given, is
    kept instead of obj). undo() is called when the process does not
    start after all."""
    if getattr(obj, "_drover_managed", False):
        return  # made by a Manager: pickles anywhere, lives as long as it
    context.assert_spawning(obj)
    popen = context.get_spawning_popen()
    if getattr(popen, "method", None) != "drover":
        raise TypeError("drover: a %s of the 'drover' context can only be "
                        "passed to a process of that context"
                        % type(obj).__name__)
    popen._keep.append(obj if keep is None else keep)
    if undo is not None:
        popen._undo.append(undo)


def _ready_fd():
    """A descriptor that is readable at once (a pipe at its end)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    os.close(w)
    return r


def _local_sentinel(proc):
    """A pidfd of a process of this node (readable once it has exited),
    or a descriptor readable at once when it has ended already (then its
    pid may be another process's)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:
        return _ready_fd()  # gone (ESRCH), or no pidfd: see below
    if not proc.is_alive():
        os.close(fd)
        return _ready_fd()
    return fd


class _Sentinel:
    """Process.sentinel of a process on another node: fileno() is a pipe
    that a thread, joining the process, closes when it has ended."""

    def __init__(self, proc):
        self._proc = proc
        self._fd = self._w = None
        self._done = False
        self._lock = threading.Lock()

    def fileno(self):
        with self._lock:
            if self._fd is None:
                self._fd, self._w = os.pipe2(os.O_CLOEXEC)
                if self._done:
                    self._end()
                else:
                    threading.Thread(target=self._watch, daemon=True,
                                     name="drover-sentinel").start()
            return self._fd

    def _watch(self):
        try:
            self._proc.join()
        finally:
            self.ended()

    def _end(self):
        if self._w is not None:
            os.close(self._w)
            self._w = None

    def ended(self):
        """The process has ended: readable from now on (also called by
        Popen.poll, so that it is once join() returned)."""
        with self._lock:
            self._done = True
            self._end()

    def close(self):
        with self._lock:
            self._end()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _open_fd_of(pid, node, fd, flags):
    if _drover.node_self() != node:
        raise _unsupported("passing a file descriptor to a process on "
                           "another node")
    return os.open("/proc/%d/fd/%d" % (pid, fd), flags | os.O_CLOEXEC)


class _KeptFd:
    """A copy of a parent's descriptor, kept open until its process ends;
    unpickled, the child opens it again through /proc (a drover process is
    no child of its parent's, and inherits nothing)."""

    def __init__(self, fd):
        self.fd = os.dup(fd)
        self.pid = os.getpid()
        self.flags = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE

    def __reduce__(self):
        return _RebuiltFd, (self.pid, _drover.node_self(), self.fd,
                            self.flags)

    def __del__(self):
        if self.pid == os.getpid():
            os.close(self.fd)


class _RebuiltFd:
    """What a child gets for a _KeptFd: detach() opens the descriptor."""

    def __init__(self, pid, node, fd, flags):
        self._args = (pid, node, fd, flags)

    def detach(self):
        return _open_fd_of(*self._args)


class Popen:
    """A process started through libdrover (the interface of
    multiprocessing's popen_* classes)."""

    method = "drover"

    def __init__(self, process_obj):
        util._flush_std_streams()
        self.returncode = None
        self.finalizer = None
        self._keep = []
        self._undo = []
        self._fds = 0  # descriptors in the arguments (DupFd)
        try:
            where = placement_for(process_obj)
            data = self._pickle(process_obj)
            if where is None and self._fds:
                # A descriptor reaches this host only: not round robin.
                where = Placement("local")
            self._proc = _drover.start(data, where)
        except BaseException:
            for undo in self._undo:
                undo()
            raise
        finally:
            self._undo = []
        self.pid = self._proc.pid
        self.node = self._proc.node
        self.sentinel = self._make_sentinel()

    def _make_sentinel(self):
        # An int where it can be (as multiprocessing's sentinels are).
        if self._proc.node == _drover.node_self():
            fd = _local_sentinel(self._proc)
            self.finalizer = util.Finalize(self, os.close, (fd,))
            return fd
        s = _Sentinel(self._proc)
        self.finalizer = util.Finalize(self, s.close)
        return s

    def _pickle(self, process_obj):
        prep = spawn.get_preparation_data(process_obj._name)
        prep["drover_parent_node"] = _drover.node_self()
        mainscript.add_code(prep)
        fp = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep, fp)
            reduction.dump(process_obj, fp)
        finally:
            context.set_spawning_popen(None)
        return fp.getbuffer()

    def duplicate_for_child(self, fd):
        return fd

    def DupFd(self, fd):
        # A child is a fork of the fork server, not of this process, so it
        # inherits nothing. A file or pipe (multiprocessing.heap's arenas,
        # the pipes of the standard Queue and Manager) is opened again by
        # the child through /proc; a socket (the standard Pipe) goes
        # through multiprocessing's resource sharer (a unix socket of this
        # process, SCM_RIGHTS). Either reaches children on this host only.
        self._fds += 1
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            from multiprocessing import resource_sharer
            return resource_sharer.DupFd(fd)
        kept = _KeptFd(fd)
        self._keep.append(kept)
        return kept

    def poll(self, flag=None):
        if self.returncode is None and self._proc is not None:
            self.returncode = self._proc.exitcode()
            if self.returncode is not None:
                self._keep = []
                if isinstance(self.sentinel, _Sentinel):
                    self.sentinel.ended()
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None and self._proc is not None:
            if not self._proc.join(timeout):
                return None
        return self.poll()

    def _send(self, fn):
        if self.returncode is None and self._proc is not None:
            try:
                fn()
            except ProcessLookupError:
                pass

    def terminate(self):
        self._send(self._proc.terminate)

    def kill(self):
        self._send(self._proc.kill)

    def close(self):
        self._proc = None
        self._keep = []
        if self.finalizer is not None:
            self.finalizer()


class DroverProcess(process.BaseProcess):
    """multiprocessing's Process, plus `placement` (a drover.Placement or
    None: the innermost `with Placement(...)` at start(), else the job's
    policy) and `node` (the index of the node it was started on)."""

    _start_method = "drover"

    def __init__(self, group=None, target=None, name=None, args=(),
                 kwargs={}, *, daemon=None, placement=None):
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        self.placement = placement

    @property
    def node(self):
        """Index of the node it was started on; None before start()."""
        return getattr(self._popen, "node", None)

    @staticmethod
    def _Popen(process_obj):
        return Popen(process_obj)


def _make_unsupported(name):
    def method(self, *args, **kwargs):
        raise _unsupported(name)
    method.__name__ = name
    method.__doc__ = "Not supported by the drover start method yet."
    return method


class DroverContext(context.BaseContext):
    _name = "drover"
    Process = DroverProcess

    def _check_available(self):
        if _drover.node_self() < 0:
            raise ValueError("drover: the runtime is not running "
                             "(import drover failed)")

    def Queue(self, maxsize=0):
        """Returns a queue object"""
        from drover.queues import Queue
        return Queue(maxsize, ctx=self.get_context())

    def Event(self):
        """Returns an event object"""
        from drover.synchronize import Event
        return Event(ctx=self.get_context())

    def RawValue(self, typecode_or_type, *args):
        """Returns a shared object"""
        from drover.sharedctypes import RawValue
        return RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        """Returns a shared array"""
        from drover.sharedctypes import RawArray
        return RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True):
        """Returns a synchronized shared object"""
        from drover.sharedctypes import Value
        return Value(typecode_or_type, *args, lock=lock,
                     ctx=self.get_context())

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        """Returns a synchronized shared array"""
        from drover.sharedctypes import Array
        return Array(typecode_or_type, size_or_initializer, lock=lock,
                     ctx=self.get_context())

    def JoinableQueue(self, maxsize=0):
        """Returns a queue object"""
        from drover.queues import JoinableQueue
        return JoinableQueue(maxsize, ctx=self.get_context())

    def SimpleQueue(self):
        """Returns a queue object"""
        from drover.queues import SimpleQueue
        return SimpleQueue(ctx=self.get_context())

    def Pipe(self, duplex=True):
        """Returns two connection objects connected by a pipe"""
        from drover.connection import Pipe
        return Pipe(duplex)

    def Manager(self):
        """Returns a started manager (drover.managers.SyncManager)"""
        from drover.managers import SyncManager
        m = SyncManager(ctx=self.get_context())
        m.start()
        return m

    def Lock(self):
        """Returns a non-recursive lock object"""
        from drover.synchronize import Lock
        return Lock(ctx=self.get_context())

    def RLock(self):
        """Returns a recursive lock object"""
        from drover.synchronize import RLock
        return RLock(ctx=self.get_context())

    def Condition(self, lock=None):
        """Returns a condition object"""
        from drover.synchronize import Condition
        return Condition(lock, ctx=self.get_context())

    def Semaphore(self, value=1):
        """Returns a semaphore object"""
        from drover.synchronize import Semaphore
        return Semaphore(value, ctx=self.get_context())

    def BoundedSemaphore(self, value=1):
        """Returns a bounded semaphore object"""
        from drover.synchronize import BoundedSemaphore
        return BoundedSemaphore(value, ctx=self.get_context())

    def Barrier(self, parties, action=None, timeout=None):
        """Returns a barrier object"""
        from drover.synchronize import Barrier
        return Barrier(parties, action, timeout, ctx=self.get_context())

    def Pool(self, processes=None, initializer=None, initargs=(),
             maxtasksperchild=None):
        """Returns a process pool object"""
        from drover.pool import Pool
        return Pool(processes, initializer, initargs, maxtasksperchild,
                    context=self.get_context())


# The objects of a context, as multiprocessing names them.
OBJECTS = ("Manager", "Pipe", "Lock", "RLock", "Condition", "Semaphore",
           "BoundedSemaphore", "Event", "Barrier", "Queue", "JoinableQueue",
           "SimpleQueue", "Pool", "RawValue", "RawArray", "Value", "Array")

for _name in OBJECTS:
    if _name not in DroverContext.__dict__:
        setattr(DroverContext, _name, _make_unsupported(_name))


def _routed(name):
    base = getattr(context.BaseContext, name)

    def method(self, *args, **kwargs):
        actual = self.get_context()
        if isinstance(actual, DroverContext):
            return getattr(actual, name)(*args, **kwargs)
        return base(self, *args, **kwargs)
    functools.update_wrapper(method, base)
    return method


def _route_default_context():
    """multiprocessing.Queue() and the like are methods of multiprocessing's
    default context, which builds the standard objects whatever the start
    method is (only Process follows it): make them build drover's objects
    when "drover" is the start method, and rebind the module's names,
    which were bound to the default context's methods at its import."""
    for name in OBJECTS:
        setattr(context.DefaultContext, name, _routed(name))
        setattr(multiprocessing, name, getattr(context._default_context, name))


def _enter_dir(data):
    # The parent's directory, where this node has it (another node may
    # not share the file system): as srun, go on elsewhere with a word.
    d = data.get("dir")
    if d is None:
        return
    try:
        os.chdir(d)
    except OSError as e:
        sys.stderr.write("drover: node %d: cannot enter %s (%s): the "
                         "process runs in %s\n"
                         % (_drover.node_self(), d, e.strerror, os.getcwd()))
    del data["dir"]


# Called with no argument when a drover Process's target has returned
# (or raised): what the child still holds goes (drover.connection).
_exit_hooks = []


def _prepare(data):
    """Prepare this child as spawn does; returns the parent's node."""
    parent_node = data.pop("drover_parent_node", None)
    _enter_dir(data)
    # This child is a fork of the interpreter at `import drover`: its
    # __main__ ran only up to that line. Run it again as __mp_main__, as
    # spawn does, so that what it defines later unpickles by reference;
    # spawn skips that when __main__ looks complete, hence the stand-in.
    if "init_main_from_path" in data or "init_main_from_name" in data:
        sys.modules["__main__"] = types.ModuleType("__main__")
    with mainscript.use_code(data):
        spawn.prepare(data)
    return parent_node


# Write ends of parent sentinels that stand for a parent on another node.
_parent_pipes = []


def _parent_sentinel(obj, parent_node):
    """What parent_process().join() and is_alive() wait on: a pidfd of the
    parent (readable once it has ended) where it runs on this node; for a
    parent on another node a pipe that never becomes readable (it counts
    as alive: this node cannot watch it)."""
    r, w = os.pipe()
    if parent_node == _drover.node_self():
        try:
            fd = os.pidfd_open(obj._parent_pid)
        except ProcessLookupError:  # gone already: ready at once
            os.close(w)
            return r
        except OSError:
            fd = None
        if fd is not None:
            os.close(r)
            os.close(w)
            return fd
    _parent_pipes.append(w)
    return r


def _child_main(data):
    """Run the pickled process in this child; returns its exit code."""
    # A process started on another node was exec'd with these (libdrover
    # took them out of its environment, os.environ still has them).
    os.environ.pop("DROVER_TASK", None)
    os.environ.pop("DROVER_TASK_ARG_FD", None)
    # A GPU placement set these in the C environment after the fork.
    for name in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        value = _drover.getenv(name)
        if value is None:
            os.environ.pop(name, None)
        elif os.environ.get(name) != value:
            os.environ[name] = value
    try:
        fp = io.BytesIO(data)
        process.current_process()._inheriting = True
        try:
            parent_node = _prepare(reduction.pickle.load(fp))
            obj = reduction.pickle.load(fp)
        finally:
            del process.current_process()._inheriting
    except BaseException:
        sys.stderr.write("drover: process could not start:\n")
        traceback.print_exc()
        for hook in _exit_hooks:  # lets go of the pipe ends it attached
            hook()
        util._flush_std_streams()
        return 1
    code = obj._bootstrap(_parent_sentinel(obj, parent_node))
    for hook in _exit_hooks:
        hook()
    return code


context._concrete_contexts["drover"] = DroverContext()
_route_default_context()
