"""Backbones with named taps (CIFAR ResNets; torchvision's ResNets and DenseNets), early-exit heads, ResLT heads,
and the network that joins them."""
