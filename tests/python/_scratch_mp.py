import sys
import drover
import multiprocessing as mp
from drover.context import DroverContext
_spawn = mp.get_context("spawn")
for name in ("RLock", "Lock", "Value", "Array", "SimpleQueue", "Semaphore", "BoundedSemaphore", "Condition", "Barrier", "JoinableQueue", "Manager"):
    if DroverContext.__dict__.get(name).__doc__.startswith("Not supported"):
        setattr(DroverContext, name, (lambda n: lambda self, *a, **k: getattr(_spawn, n)(*a, **k))(name))
sys.argv[0] = __file__.replace("_scratch_mp.py", "test_cpython_mp.py")
exec(open(sys.argv[0]).read())
