"""The project's own tooling: what its developers run, not what a sweep service user runs.

    lease/   GPU leases: plan the next one, run it on the borrowed GPU, pack and collect what came back,
             and the GPU section of docs/PERFORMANCE.md it regenerates (scripts/gpu_lease.sh, gpu_collect.sh)

May import: tuner, trainables and benchmarks. Nothing in tuner or trainables imports it, and it is not
in the wheel (pyproject.toml packages: trainables, tuner); run it from the repository's root.
"""
