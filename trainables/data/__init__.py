"""Long-tailed CIFAR data: where it is found, how the long-tailed subset is cut, the splits, augmentation."""
