"""GPU leases: a borrowed GPU for one command of at most 10 minutes, 64 MiB carried, 8 files back.

    __main__   python -m tools.lease plan | run | collect
    plan       what the next lease does, from the repository alone
    run        the lease itself, on the GPU machine: its steps inside a deadline
    pack       what comes back: at most 8 files with a manifest
    collect    back here: the returned files into results/ and docs/perf/, docs rebuilt
    perf_doc   docs/PERFORMANCE.md's GPU section, generated from docs/perf/
"""
