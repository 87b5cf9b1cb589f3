"""multiprocessing.Manager() for the "drover" start method.

A standard manager is a server process that holds the objects and hands
out proxies, which pickle anywhere: into a pool's tasks, into queue
messages. drover's queues, events and locks already live in shared
memory (or on their home node) and travel as handles, so this manager
holds no server: its methods build the context's own objects, marked
managed, which then pickle anywhere as proxies do (not only into a
starting Process). They live until the manager shuts down (shutdown(),
the end of a with block, or its garbage collection); a process that
attaches one later gets FileNotFoundError. Objects that would need a
server (list, dict, Namespace) raise NotSupportedError.
"""

from drover.context import NotSupportedError

__all__ = ["SyncManager"]

# The manager methods that build one of the context's objects.
_OBJECTS = ("Queue", "JoinableQueue", "Event", "Lock", "RLock", "Semaphore",
            "BoundedSemaphore", "Condition", "Barrier", "Value", "Array",
            "Pool")
# Those that need a server process holding a Python object.
_SERVED = ("list", "dict", "Namespace")


class SyncManager:
    """multiprocessing.managers.SyncManager's interface (start, shutdown,
    context manager, the object methods)."""

    def __init__(self, *, ctx):
        self._ctx = ctx
        self._objects = None

    def start(self, initializer=None, initargs=()):
        if self._objects is not None:
            raise RuntimeError("drover: the manager has already started")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        # No server process to initialise: run it here, as it would run
        # there before serving.
        if initializer is not None:
            initializer(*initargs)
        self._objects = []

    def shutdown(self):
        """Drop the managed objects (removed once nothing here holds
        them)."""
        self._objects = None

    def join(self, timeout=None):
        pass

    def connect(self):
        raise NotSupportedError("drover: Manager.connect (a manager on a "
                                "server address) is not supported by the "
                                "'drover' start method")

    def __enter__(self):
        if self._objects is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def _make(self, name, *args, **kwargs):
        if self._objects is None:
            raise ValueError("drover: the manager is not running")
        obj = getattr(self._ctx, name)(*args, **kwargs)
        obj._drover_managed = True
        self._objects.append(obj)
        return obj


def _object_method(name):
    def method(self, *args, **kwargs):
        return self._make(name, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = "The context's %s, managed: it pickles anywhere." % name
    return method


def _served_method(name):
    def method(self, *args, **kwargs):
        raise NotSupportedError(
            "drover: Manager().%s is not supported by the 'drover' start "
            "method (a shared %s needs a server process; pass data "
            "through a Queue instead)" % (name, name))
    method.__name__ = name
    return method


for _name in _OBJECTS:
    setattr(SyncManager, _name, _object_method(_name))
for _name in _SERVED:
    setattr(SyncManager, _name, _served_method(_name))
