"""Write a smaller copy of a Parquet CIFAR folder: only the training images some long-tailed sets use.

    python -m trainables.data.subset_copy ../shared/data/cifar10 .gpudata --imbalance 100 50 10

A GPU lease carries at most 64 MiB; the JPEG copy of CIFAR-10 is 18 MB, and ray, optuna and mlflow
another 48 MB. The long-tailed training sets keep a fraction of the 50,000 training images, and
the reference selection shuffles each class's images once and keeps a prefix, so the sets for
ratios 100, 50 and 10 (same seed) are nested: CIFAR-10-LT-10's 20,431 images hold the other two.
The copy keeps those rows (with their `position` in the full table) and every row's label in its
metadata, so trainables/data/sources.py loads it as the full table with only those images present
and the selection comes out exactly as from the full copy. test.parquet is copied whole.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from trainables.cli import BAD_INPUT_EXIT, OneLineParser
from trainables.data.long_tail import long_tailed_counts, select_long_tailed
from trainables.data.sources import SUBSET_LABELS, SUBSET_OF


def kept_rows(labels: np.ndarray, ratios: list[float], seed: int = 0) -> np.ndarray:
    """Sorted positions of every training image the long-tailed sets of `ratios` select."""
    num_classes = int(labels.max()) + 1
    keep: set[int] = set()
    for ratio in ratios:
        counts = long_tailed_counts(len(labels) / num_classes, num_classes, ratio)
        keep.update(select_long_tailed(labels, counts, seed).tolist())
    return np.array(sorted(keep), dtype=np.int64)


def write_subset(source: Path, target: Path, ratios: list[float], seed: int = 0) -> int:
    """Write target/train.parquet (the kept rows) and target/test.parquet; the number of rows kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source / "train.parquet")
    labels = table.column("label").to_numpy().astype(np.int64)
    rows = kept_rows(labels, ratios, seed)
    subset = table.take(pa.array(rows)).append_column("position", pa.array(rows))
    meta = dict(table.schema.metadata or {})
    meta[SUBSET_LABELS] = ",".join(map(str, labels.tolist())).encode()
    meta[SUBSET_OF] = (f"{source.name}/train.parquet: the {len(rows)} of {len(labels)} images of the long-tailed "
                       f"sets for ratios {', '.join(f'{r:g}' for r in ratios)}, imbalance seed {seed}").encode()
    target.mkdir(parents=True, exist_ok=True)
    partial = target / ".train.parquet.tmp"
    pq.write_table(subset.replace_schema_metadata(meta), partial)
    partial.replace(target / "train.parquet")
    shutil.copyfile(source / "test.parquet", target / "test.parquet")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m trainables.data.subset_copy", description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="a folder with train.parquet and test.parquet (the JPEG copy)")
    p.add_argument("target", help="where to write the smaller copy")
    p.add_argument("--imbalance", nargs="+", type=float, default=[100.0, 50.0, 10.0])
    p.add_argument("--seed", type=int, default=0, help="imbalance_seed of the runs")
    args = p.parse_args(argv)
    source = Path(args.source)
    if not (source / "train.parquet").is_file() or not (source / "test.parquet").is_file():
        print(f"trainables.data.subset_copy: {source} has no train.parquet and test.parquet", file=sys.stderr)
        return BAD_INPUT_EXIT
    kept = write_subset(source, Path(args.target), args.imbalance, args.seed)
    size = sum(f.stat().st_size for f in Path(args.target).glob("*.parquet"))
    print(f"{args.target}: {kept} training images and the whole test set, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
