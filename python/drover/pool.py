"""Pool for the "drover" start method: multiprocessing.pool.Pool's interface
over libdrover's pool (shared-memory rings per worker, docs/API.md).

The parent pickles the function once per call and the arguments once per
chunk; a chunk travels as one libdrover item (b"<4-byte length><function
pickle><chunk pickle>"). Every worker is a fork of the interpreter made at
`import drover` that runs _worker_init once (main module as spawn
prepares it, then the initializer) and _worker_run per chunk, caching the
last function. Results come back through the extension's callback into a
list that a thread of the pool ("result handler", as multiprocessing's)
turns into the jobs' results, calling their callbacks. A thread of the
pool ("task handler") reads iterables without a length for imap and
imap_unordered, so that those stay lazy.

What differs from multiprocessing.Pool: a worker that dies fails the task
it ran (WorkerLostError, with "killed by signal 9" or "exit code 3") and
is replaced, instead of that task's result never coming; terminate() fails
the tasks still pending (PoolError) instead of leaving them unresolved;
map's default chunksize makes about 8 chunks per worker, not 4.
"""

import copyreg
import io
import itertools
import os
import pickle
import queue
import sys
import threading
import traceback
import warnings
from multiprocessing import ProcessError, context, pool as mp_pool
from multiprocessing import context as _context
from multiprocessing import process, reduction, spawn, util
from multiprocessing.pool import (CLOSE, INIT, RUN, TERMINATE, ApplyResult,
                                  ExceptionWithTraceback, IMapIterator,
                                  IMapUnorderedIterator, MapResult,
                                  MaybeEncodingError, mapstar, starmapstar)

from drover import _drover

__all__ = ["Pool", "PoolError", "WorkerLostError"]

_loads = reduction.ForkingPickler.loads
_table = (None, None)  # ForkingPickler's reducers, as last seen, and a table


def _dumps(obj):
    """ForkingPickler.dumps(obj) without copying its dispatch table for
    each call (a third of the time a chunk takes in a worker)."""
    global _table
    extra = reduction.ForkingPickler._extra_reducers
    if _table[0] != len(extra):
        table = copyreg.dispatch_table.copy()
        table.update(extra)
        _table = (len(extra), table)
    buf = io.BytesIO()
    p = pickle.Pickler(buf)
    p.dispatch_table = _table[1]
    p.dump(obj)
    return buf.getbuffer()
_CHUNKS_PER_WORKER = 8  # map's default chunksize: about this many each


class PoolError(ProcessError):
    """A task the pool could not run (the pool was terminated, no worker
    could start, ...): the reason is the message."""


class WorkerLostError(PoolError):
    """The worker running this task died: "killed by signal 9", "exit code
    3"; the pool replaced it."""


def _one(fx):
    """The mapper of chunks of one item (apply, imap with chunksize 1)."""
    func, x = fx
    return func(x)


def _apply(fa):
    func, (args, kwds) = fa
    return func(*args, **kwds)


class _Spawning:
    """Stands for the spawning Popen while a pool's initargs are pickled,
    so that drover objects (Queue, Event, ...) travel to the workers as in
    a Process's arguments; the pool keeps them alive."""

    method = "drover"

    def __init__(self):
        self._keep = []

    def DupFd(self, fd):
        raise NotImplementedError(
            "drover: file descriptors cannot be passed to pool workers")

    duplicate_for_child = DupFd


class _Worker:
    """What Pool._pool lists: a worker of the pool, by pid."""

    def __init__(self, pool, pid):
        self._cpool = pool
        self.pid = pid if pid > 0 else None

    def is_alive(self):
        return self.pid is not None and self.pid in self._cpool.workers()

    def __repr__(self):
        return "<drover pool worker pid=%s>" % self.pid


class _Cache(dict):
    """Jobs by id, as multiprocessing's _PoolCache (without notifier)."""


class Pool(mp_pool.Pool):
    """multiprocessing.pool.Pool for the drover start method."""

    def __init__(self, processes=None, initializer=None, initargs=(),
                 maxtasksperchild=None, context=None):
        self._pool_obj = None
        self._state = INIT
        self._ctx = context or _context.get_context("drover")
        self._cache = _Cache()
        self._change_notifier = None
        if processes is None:
            processes = os.cpu_count() or 1
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            if not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0:
                raise ValueError("maxtasksperchild must be a positive int or "
                                 "None")
        if initializer is not None and not callable(initializer):
            raise TypeError('initializer must be a callable')
        self._processes = processes
        self._maxtasksperchild = maxtasksperchild
        self._initializer = initializer
        self._initargs = initargs
        self._spawning = _Spawning()
        init = self._init_bytes(initializer, initargs)
        self._pool_obj = _drover.Pool(processes, init,
                                      maxtasksperchild or 0)
        self._taskqueue = queue.SimpleQueue()
        self._task_handler = threading.Thread(
            target=Pool._handle_tasks,
            args=(self._taskqueue, self._pool_obj, self._cache),
            name="drover-pool-tasks", daemon=True)
        self._task_handler._state = RUN
        self._task_handler.start()
        self._result_handler = threading.Thread(
            target=Pool._handle_results, args=(self._pool_obj, self._cache),
            name="drover-pool-results", daemon=True)
        self._result_handler._state = RUN
        self._result_handler.start()
        self._terminate = util.Finalize(
            self, self._terminate_pool,
            args=(self._pool_obj, self._taskqueue, self._task_handler,
                  self._result_handler),
            exitpriority=15)
        self._state = RUN

    # ---- what the workers get ----

    def _init_bytes(self, initializer, initargs):
        prep = spawn.get_preparation_data("DroverPoolWorker")
        fp = io.BytesIO()
        context.set_spawning_popen(self._spawning)
        try:
            reduction.dump(prep, fp)
            reduction.dump((os.getpid(), process.current_process().name,
                            initializer, tuple(initargs)), fp)
        finally:
            context.set_spawning_popen(None)
        return fp.getvalue()

    @staticmethod
    def _prefix(mapper, func):
        head = _dumps((mapper, func))
        return len(head).to_bytes(4, "little") + bytes(head)

    # ---- workers, state ----

    @property
    def _pool(self):
        if self._pool_obj is None:
            return []
        return [_Worker(self._pool_obj, pid)
                for pid in self._pool_obj.workers()]

    def _repopulate_pool(self):
        """libdrover's pool replaces workers itself; nothing to do."""

    def __del__(self, _warn=warnings.warn, RUN=RUN):
        if getattr(self, "_state", None) == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}",
                  ResourceWarning, source=self)

    def __repr__(self):
        return (f'<{type(self).__module__}.{type(self).__qualname__} '
                f'state={self._state} pool_size={self._processes}>')

    # ---- submitting ----

    def _submit(self, job, base, payloads):
        """Hand encoded chunks to the pool; failures resolve them here. A
        map's chunks wake the result handler once, with the last one."""
        try:
            self._pool_obj.submit(job._job, base, payloads,
                                  not isinstance(job, MapResult))
        except OSError as e:
            err = PoolError("drover: pool: %s" % (e.strerror or e))
            for i in range(len(payloads)):
                _resolve(self._cache, job._job, base + i, (False, err))

    def _run(self, job, prefix, chunks, total=0):
        """Encode and submit the chunks of job. A chunk that cannot be
        pickled fails, as in multiprocessing; an iterable that fails gives
        its error to the chunk it was reading and to the rest of the
        total announced (a map's). Returns the number of chunks."""
        payloads, failed, i = [], [], 0
        try:
            for chunk in chunks:
                try:
                    payloads.append(prefix + _dumps(chunk))
                except Exception as e:
                    payloads.append(None)
                    failed.append((i, e))
                i += 1
        except Exception as e:
            failed.extend((k, e) for k in range(i, max(total, i + 1)))
            i = max(total, i + 1)
        # Failures first: no result of this job can race with them.
        for k, e in failed:
            _resolve(self._cache, job._job, k, (False, e))
        start = 0
        for k, p in enumerate(payloads + [None]):
            if p is None:
                if k > start:
                    self._submit(job, start, payloads[start:k])
                start = k + 1
        return i

    def apply_async(self, func, args=(), kwds={}, callback=None,
                    error_callback=None):
        self._check_running()
        prefix = self._prefix(_apply, func)  # before the job: may raise
        result = ApplyResult(self, callback, error_callback)
        self._run(result, prefix, [(args, kwds)], 1)
        return result

    def _map_async(self, func, iterable, mapper, chunksize=None,
                   callback=None, error_callback=None):
        self._check_running()
        if not hasattr(iterable, '__len__'):
            iterable = list(iterable)
        n = len(iterable)
        if chunksize is None:
            chunksize, extra = divmod(n, self._processes * _CHUNKS_PER_WORKER)
            if extra:
                chunksize += 1
        if n == 0:
            chunksize = 0
        prefix = self._prefix(mapper, func)
        result = MapResult(self, chunksize, n, callback,
                           error_callback=error_callback)
        if n:
            self._run(result, prefix, _chunks(iterable, chunksize),
                      -(-n // chunksize))
        return result

    def _imap(self, cls, func, iterable, chunksize):
        self._check_running()
        if not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0:n}".format(
                chunksize))
        if chunksize == 1:
            prefix = self._prefix(_one, func)
            chunks = iter(iterable)
        else:
            prefix = self._prefix(mapstar, func)
            chunks = _chunks(iterable, chunksize)
        result = cls(self)
        if hasattr(iterable, "__len__"):
            result._set_length(self._run(result, prefix, chunks))
        else:
            self._taskqueue.put((self, result, prefix, chunks))
        if chunksize == 1:
            return result
        return (item for chunk in result for item in chunk)

    def imap(self, func, iterable, chunksize=1):
        """Like map(), lazier: results in order as they come."""
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func, iterable, chunksize=1):
        """Like imap(), results in the order they finish."""
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    # ---- the pool's threads ----

    @staticmethod
    def _handle_tasks(taskqueue, cpool, cache):
        """Read the iterables of imap without a length, one chunk after
        another; close the pool once close() said so."""
        thread = threading.current_thread()
        for task in iter(taskqueue.get, None):
            pool, job, prefix, chunks = task
            i = 0
            try:
                for chunk in chunks:
                    if thread._state != RUN:
                        break
                    try:
                        payload = prefix + _dumps(chunk)
                    except Exception as e:
                        _resolve(cache, job._job, i, (False, e))
                    else:
                        pool._submit(job, i, [payload])
                    i += 1
            except Exception as e:
                # The iterable itself failed: its place gets the error, as
                # multiprocessing's _guarded_task_generation does.
                _resolve(cache, job._job, i, (False, e))
                i += 1
            job._set_length(i)
            task = pool = job = chunks = chunk = payload = None
        if thread._state == RUN:
            cpool.close()

    @staticmethod
    def _handle_results(cpool, cache):
        while True:
            batch = cpool.results(None)
            if batch is None:
                break
            for job, index, ok, payload, code in batch:
                if ok:
                    try:
                        obj = _loads(payload)
                    except Exception as e:
                        obj = (False, e)
                elif payload.startswith(("killed by signal", "exit code")):
                    obj = (False, WorkerLostError(
                        "drover: pool worker died running this task: %s"
                        % payload))
                else:
                    obj = (False, PoolError("drover: pool: %s" % payload))
                _resolve(cache, job, index, obj)
            # Nothing of a job stays alive here once it was resolved.
            batch = obj = payload = None

    # ---- lifetime ----

    def close(self):
        util.debug('closing pool')
        if self._state == RUN:
            self._state = CLOSE
            self._taskqueue.put(None)

    def terminate(self):
        util.debug('terminating pool')
        self._state = TERMINATE
        self._terminate()

    def join(self):
        util.debug('joining pool')
        if self._state == RUN:
            raise ValueError("Pool is still running")
        elif self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        self._task_handler.join()
        while not self._pool_obj.join(None):
            pass
        self._result_handler.join()

    @classmethod
    def _terminate_pool(cls, cpool, taskqueue, task_handler, result_handler):
        util.debug('terminating workers')
        task_handler._state = TERMINATE
        taskqueue.put(None)
        cpool.terminate()
        cpool.join(None)
        if threading.current_thread() is not task_handler:
            task_handler.join()
        if threading.current_thread() is not result_handler:
            result_handler.join()

    def __reduce__(self):
        raise NotImplementedError(
            'pool objects cannot be passed between processes or pickled')


def _chunks(iterable, size):
    it = iter(iterable)
    while True:
        chunk = tuple(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def _resolve(cache, job, index, obj):
    """Give a job its result (in the result handler, or where a chunk
    failed before it was sent); a callback that raises is reported, as an
    exception of a thread, and the pool goes on."""
    try:
        target = cache[job]
    except KeyError:
        return  # a failed map that was resolved already
    try:
        target._set(index, obj)
    except Exception:
        sys.stderr.write("drover: pool: a result callback raised:\n")
        traceback.print_exc()


# ---- in the workers ----

_cached = (None, None)  # the last function's pickle and what it gave


def _worker_init(data):
    """Run once in each worker: prepare __main__ as spawn does, become a
    daemonic pool worker process, run the initializer. Returns 0, or the
    exit code after a failure (reported on stderr)."""
    from drover.context import _prepare
    try:
        fp = io.BytesIO(data)
        process.current_process()._inheriting = True
        try:
            _prepare(reduction.pickle.load(fp))
            parent_pid, parent_name, initializer, initargs = \
                reduction.pickle.load(fp)
        finally:
            del process.current_process()._inheriting
        util._finalizer_registry.clear()
        util._run_after_forkers()
        me = process.current_process()
        me._config["daemon"] = True
        me._name = "DroverPoolWorker-%d" % os.getpid()
        me._parent_pid = parent_pid
        process._parent_process = process._ParentProcess(
            parent_name, parent_pid, None)
        if initializer is not None:
            initializer(*initargs)
    except SystemExit as e:
        return _exit_code(e)
    except BaseException:
        sys.stderr.write("drover: pool worker %d: initializer failed:\n"
                         % os.getpid())
        traceback.print_exc()
        util._flush_std_streams()
        return 1
    util._flush_std_streams()
    return 0


def _exit_code(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(str(code) + "\n")
    return 1


def _worker_run(buf):
    """One chunk: bytes in, the pickle of (success, value) out."""
    global _cached
    n = int.from_bytes(buf[:4], "little")
    head = buf[4:4 + n]
    try:
        if _cached[0] != head:
            _cached = (None, None)
            _cached = (head, _loads(head))
        mapper, func = _cached[1]
        result = (True, mapper((func, _loads(buf[4 + n:]))))
    except SystemExit as e:
        util._flush_std_streams()
        os._exit(_exit_code(e) & 0xff)
    except Exception as e:
        result = (False, ExceptionWithTraceback(e, e.__traceback__))
    try:
        out = _dumps(result)
        if len(out) > _drover.MESSAGE_MAX:
            raise ValueError("result of %d bytes (limit %d)"
                             % (len(out), _drover.MESSAGE_MAX))
    except Exception as e:
        out = _dumps((False, MaybeEncodingError(e, result[1])))
    del result
    util._flush_std_streams()
    return out

