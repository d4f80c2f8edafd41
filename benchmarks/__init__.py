"""Speed measurements of the project, run by its developers and the GPU lease; not part of the product.

    training    python -m benchmarks.training: the plain PyTorch recipe against trainables' fast path
    augment     python -m benchmarks.augment: AutoAugment per image (torchvision) against the batched one
    sweep       python -m benchmarks.sweep: trials through the real sweep path, summed throughput and overhead
    workers     python -m benchmarks.workers: K trials on one device, a worker's strategies against process packing
    streaming   python -m benchmarks.streaming: the image-file pipeline at 224 against a plain DataLoader with PIL
    plain_loop  the reference recipe (DataLoader, PIL transforms) that `training` and the equivalence tests compare with

May import: trainables and tuner. Nothing in tuner or trainables imports it, and it is not in the wheel;
run it from the repository's root. Figures go to docs/PERFORMANCE.md with machine, date and command.
"""
