"""Pure-PyTorch training of long-tailed CIFAR classifiers: ELF early exits, ResLT heads, hybrids.

This package imports torch, torchvision, numpy and pyarrow only (never ray, optuna or mlflow), so
that it runs alone (`python -m trainables.train --preset ldam_drw`) and so that the sweep service
in `tuner/` can wrap it without the training code knowing about the sweep.

Entry points:
    trainables.config.TrainConfig      the typed configuration of one training run
    trainables.presets.build_preset    named configurations of every model in the seed documents
    trainables.loop.train              the training loop: train(config, report) -> summary
"""
