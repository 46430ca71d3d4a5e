"""``python -m localdev.benchmarks.peak_rss MODULE ARGS...``: run ``python -m MODULE ARGS...`` and report
its own peak RSS on stderr at exit (``PEAK_RSS_MIB=<float>``).

Why not ``wait4``'s ``ru_maxrss``: Linux carries a process's high-water mark across ``exec``, so a
child forked from a large parent (the benchmark process holds Dagster, matplotlib, the clients)
reports at least the parent's size. ``VmHWM`` in ``/proc/self/status`` belongs to the address
space the ``exec`` created, so it is the worker's own.
"""

import atexit
import runpy
import sys

MARKER = "PEAK_RSS_MIB="


def _report() -> None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write(f"\n{MARKER}{int(line.split()[1]) / 1024:.1f}\n")
                sys.stderr.flush()


if __name__ == "__main__":
    atexit.register(_report)
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
