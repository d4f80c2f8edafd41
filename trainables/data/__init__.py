"""Long-tailed data: CIFAR (where it is found, how the long-tailed subset is cut, the splits, augmentation on
the device) and image-file sets (their published split files, streamed from disk batch by batch)."""
