"""Run a Python program under `drover run` across two nodes emulated on
this host, as tests/integration/test_multinode_loopback.sh does: a host
file of two names, agents started by a launch template that names their
node (DROVER_NODE_NAME) and listening on loopback. The template also
starts the agent in / and without PYTHONPATH and TWO_NODES_MARK, so
that a remote process has the main process's directory and environment
only if drover hands them over (as srun does).

    two_nodes.py PROGRAM [ARGS...]   runs PROGRAM with this interpreter,
                                     exiting with its status

DROVER_BIN names the drover command (CTest sets it)."""

import os
import subprocess
import sys
import tempfile

HOSTS = ("py-a", "py-b")


def drover_bin():
    return os.environ.get("DROVER_BIN", "drover")


def command(hostfile, argv, job):
    return [drover_bin(), "run", "--hostfile", hostfile, "--launch-cmd",
            "env -C / -u PYTHONPATH -u TWO_NODES_MARK "
            "DROVER_NODE_NAME={host} {cmd}",
            "--network-prefix", "127.0.0.0/8", "--job-id", job, "--"] + argv


def run(argv, timeout=300, **kw):
    """subprocess.run of argv under drover run across the two nodes."""
    with tempfile.TemporaryDirectory() as d:
        hostfile = os.path.join(d, "hosts")
        with open(hostfile, "w") as f:
            f.write("\n".join(HOSTS) + "\n")
        env = dict(os.environ, DROVER_NODE_NAME=HOSTS[0])
        env.update(kw.pop("env", {}))
        job = "py2n%d" % os.getpid()
        return subprocess.run(command(hostfile, argv, job), env=env,
                              timeout=timeout, **kw)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(run([sys.executable] + sys.argv[1:]).returncode)
