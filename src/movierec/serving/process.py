"""Process-wide settings for a process that only serves: ``movierec serve``.

Library code never calls this: it changes the whole process.
"""

from __future__ import annotations

import gc


def tune_process_for_serving() -> None:
    """Tune the process for a server that has loaded its models (``movierec serve``).

    What is loaded lives as long as the process: freezing it keeps the garbage
    collector from rescanning it during requests (a large share of the tail latency).
    A request is one query: a second BLAS thread barely speeds its matrix-vector
    product up, and spins for milliseconds after each one, taking a core from the rest
    of the request (measurements: ``benchmarks/NOTES.md``). faiss searches one query on
    one thread anyway; its idle OpenMP threads spin too.
    """
    from threadpoolctl import threadpool_limits

    gc.collect()
    gc.freeze()
    threadpool_limits(1)  # every BLAS and OpenMP pool loaded so far
