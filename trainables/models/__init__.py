"""CIFAR ResNets with named taps, early-exit heads, ResLT heads, and the network that joins them."""
