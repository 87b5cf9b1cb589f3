"""The job's nodes and where processes go.

nodes() lists the job's nodes (libdrover's node table); a Placement says
where a Process (or a Pool's workers) starts: by the job's policy (round
robin over the nodes unless `drover run --policy` says otherwise), round
robin, block (fill a node's CPUs, then the next), this node, a node by
host name or index, and optionally one GPU of it.
"""

import collections
import threading

from drover import _drover

__all__ = ["Node", "nodes", "current_node", "Placement", "current_placement"]


class Node(collections.namedtuple(
        "Node", "index hostname address cpus gpus uid")):
    """One node of the job: its index (0 runs the main process), host name,
    the address its agent listens on ("" in a one-node job), usable CPUs
    (its affinity mask, or what the host file or Slurm says), GPUs, and an
    id unique for the job's lifetime."""

    __slots__ = ()


def nodes():
    """The job's nodes, in index order (a list of Node)."""
    return [Node(*t) for t in _drover.nodes()]


def current_node():
    """The Node this process runs on."""
    return nodes()[_drover.node_self()]


_POLICIES = {
    None: _drover.POLICY_DEFAULT,
    "default": _drover.POLICY_DEFAULT,
    "round-robin": _drover.POLICY_ROUND_ROBIN,
    "block": _drover.POLICY_BLOCK,
    "local": _drover.POLICY_LOCAL,
}

_active = threading.local()


class Placement:
    """Where a process goes.

        Placement()                        the job's policy (round robin)
        Placement("round-robin")           cycle over the nodes
        Placement("block")                 fill a node's CPUs, then the next
        Placement("local")                 this process's node
        Placement(host="node7")            the node named node7
        Placement(host=1)                  node index 1 (or a Node)
        Placement(host=..., gpu=0)         and only its GPU 0 visible

    Give one to a Process (`ctx.Process(target=f, placement=p)`, or set
    `proc.placement = p` before start()), or make it the default of the
    processes started in a block: `with Placement("block"): ...`. A GPU
    sets CUDA_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES in the process; it
    must be below the node's GPU count where the node has GPUs."""

    ROUND_ROBIN = "round-robin"
    BLOCK = "block"
    LOCAL = "local"

    __slots__ = ("policy", "host", "gpu")

    def __init__(self, policy=None, *, host=None, gpu=None):
        if policy not in _POLICIES:
            raise ValueError("drover: Placement: policy %r is not one of "
                             "'round-robin', 'block', 'local' (or None)"
                             % (policy,))
        if isinstance(host, Node):
            host = host.index
        if host is not None:
            if policy not in (None, "default"):
                raise ValueError("drover: Placement: a host goes with no "
                                 "policy, not %r" % (policy,))
            if isinstance(host, bool) or not isinstance(host, (int, str)):
                raise TypeError("drover: Placement: host must be a host "
                                "name, a node index or a Node, not %s"
                                % type(host).__name__)
            if isinstance(host, int) and host < 0:
                raise ValueError("drover: Placement: no node %d" % host)
            if isinstance(host, str) and not host:
                raise ValueError("drover: Placement: empty host name")
        if gpu is not None:
            if isinstance(gpu, bool) or not isinstance(gpu, int):
                raise TypeError("drover: Placement: gpu must be an int, "
                                "not %s" % type(gpu).__name__)
            if gpu < 0:
                raise ValueError("drover: Placement: gpu must be >= 0")
        self.policy = None if policy == "default" else policy
        self.host = host
        self.gpu = gpu

    @property
    def _c(self):
        """(policy, node, host, gpu) for the extension (dv_placement_t)."""
        gpu = -1 if self.gpu is None else self.gpu
        if isinstance(self.host, int):
            return (_drover.POLICY_NODE, self.host, None, gpu)
        if isinstance(self.host, str):
            return (_drover.POLICY_HOST, 0, self.host, gpu)
        return (_POLICIES[self.policy], 0, None, gpu)

    def __enter__(self):
        stack = getattr(_active, "stack", None)
        if stack is None:
            stack = _active.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _active.stack.pop()
        return False

    def __eq__(self, other):
        if not isinstance(other, Placement):
            return NotImplemented
        return (self.policy, self.host, self.gpu) == (other.policy,
                                                      other.host, other.gpu)

    def __hash__(self):
        return hash((self.policy, self.host, self.gpu))

    def __getstate__(self):
        return (self.policy, self.host, self.gpu)

    def __setstate__(self, state):
        self.policy, self.host, self.gpu = state

    def __repr__(self):
        parts = [] if self.policy is None else [repr(self.policy)]
        if self.host is not None:
            parts.append("host=%r" % (self.host,))
        if self.gpu is not None:
            parts.append("gpu=%d" % self.gpu)
        return "Placement(%s)" % ", ".join(parts)


def current_placement():
    """The innermost `with Placement(...)` of this thread, or None."""
    stack = getattr(_active, "stack", None)
    return stack[-1] if stack else None


def placement_for(process_obj):
    """Where process_obj starts: its own `placement` attribute, else the
    innermost `with` block's, else None (the job's policy)."""
    p = getattr(process_obj, "placement", None)
    if p is None:
        p = current_placement()
    if p is not None and not isinstance(p, Placement):
        raise TypeError("drover: placement must be a drover.Placement, "
                        "not %s" % type(p).__name__)
    return p
