"""multiprocessing.Manager() for the "drover" start method.

The manager is multiprocessing's SyncManager: a server process (a drover
Process on this node) that holds Python objects and hands out proxies
(dict, list, Namespace, and whatever register() adds). Objects drover
has in shared memory (queues, events, locks, semaphores, conditions,
barriers, values, arrays, pools) are not served: these methods build the
context's own objects, marked managed, which then pickle anywhere as
proxies do (into pool tasks, into queue messages), not only into a
starting Process, and live until the manager shuts down; a process that
attaches one later gets FileNotFoundError. In a job of several nodes the
server listens on this node's address, so proxies work from every node.
"""

from multiprocessing import managers

from drover.nodes import Placement, current_node, nodes

__all__ = ["SyncManager"]

# The manager methods that build one of the context's own objects.
_OBJECTS = ("Queue", "JoinableQueue", "Event", "Lock", "RLock", "Semaphore",
            "BoundedSemaphore", "Condition", "Barrier", "Value", "Array",
            "Pool")


class SyncManager(managers.SyncManager):
    """multiprocessing.managers.SyncManager whose shared-memory objects are
    drover's."""

    def __init__(self, address=None, authkey=None, serializer="pickle",
                 ctx=None, **kwargs):
        if address is None and len(nodes()) > 1:
            address = (current_node().address, 0)
        super().__init__(address, authkey, serializer, ctx=ctx, **kwargs)
        self._objects = None

    def start(self, initializer=None, initargs=()):
        # The server on this node: its proxies' address is this node's.
        with Placement("local"):
            super().start(initializer, initargs)
        self._objects = []
        stop = self.shutdown  # the Finalize that start() made

        def shutdown():
            self._objects = None
            stop()
        self.shutdown = shutdown

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


for _name in _OBJECTS:
    setattr(SyncManager, _name, _object_method(_name))
