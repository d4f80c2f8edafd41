"""Train one configuration from the command line; one JSON object per epoch, then a summary.

    python -m trainables.train --preset ldam_drw --imbalance 100 --epochs 200 --device cuda
    python -m trainables.train --preset elf_ldam_drw --set lr=0.05 --set exit_taps=stage1,stage2
    python -m trainables.train --config results/sweep-best.json --seed 1
    python -m trainables.train --preset ldam_drw --checkpoint run.pt      (resumes from run.pt when it exists)
    python -m trainables.train --list-presets

Data: --data-dir, else TUNER_DATA_DIR, else a cache folder (see trainables/data/sources.py).
The last line is {"summary": true, "status": "completed" | "diverged", ...}; warnings (early
exits that do not train) go to stderr. Bad input (unknown preset or key, a wrong type, missing
data): exit 2 with one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from trainables.cli import BAD_INPUT_EXIT, BadArgument, OneLineParser, key_values
from trainables.config import ConfigError, with_overrides
from trainables.data.sources import DataNotFoundError
from trainables.presets import PRESETS, build_preset


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m trainables.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", help="a named configuration; --list-presets shows them")
    p.add_argument("--config", metavar="JSON_FILE",
                   help="a whole configuration as JSON (config fields, or a run summary with a 'config' object); "
                        "the other options override it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field (repeatable)")
    p.add_argument("--data-dir", help="folder with CIFAR (torchvision folder or Parquet JPEG copy)")
    p.add_argument("--imbalance", type=float, help="imbalance ratio (100, 50, 10, ...)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-train-images", type=int, help="cap the long-tailed training set (quick runs)")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="save the run here after every epoch, and resume from it when it exists (same configuration)")
    p.add_argument("--list-presets", action="store_true", help="print the presets and their sources, then exit")
    return p.parse_args(argv)


def overrides_from_args(args: argparse.Namespace) -> dict[str, object]:
    try:
        out: dict[str, object] = dict(key_values(args.set))
    except BadArgument as exc:
        raise ConfigError(str(exc)) from None
    named = {"data_dir": args.data_dir, "imbalance_ratio": args.imbalance, "epochs": args.epochs,
             "device": args.device, "seed": args.seed, "max_train_images": args.max_train_images}
    out.update({k: v for k, v in named.items() if v is not None})
    return out


def read_config_file(path: str) -> dict[str, object]:
    """Config fields from a JSON file: a plain object of fields, or a run summary holding one under 'config'."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path}: not a text file (JSON is UTF-8 text)") from None
    if isinstance(doc, dict) and isinstance(doc.get("config"), dict):
        doc = doc["config"]
    if not isinstance(doc, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of config fields")
    return doc


def _emit(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_presets:
        for name in sorted(PRESETS):
            print(f"{name:22s} {PRESETS[name].source}")
        return 0
    try:
        overrides = overrides_from_args(args)
        if args.preset and args.config:
            raise ConfigError("--preset and --config both give a whole configuration; pass one of them")
        if args.preset:
            config = build_preset(args.preset, **overrides)
        else:
            from trainables.config import TrainConfig

            base = TrainConfig.from_dict(read_config_file(args.config)) if args.config else TrainConfig()
            config = with_overrides(base, overrides)
        config.validate()
        from trainables.checkpoint_file import read_checkpoint, write_checkpoint
        from trainables.loop import train  # torch and friends load only once the input is known good

        resume = read_checkpoint(args.checkpoint, config) if args.checkpoint else None

        # The loop's warnings (early exits that do not train) go to stderr; stdout stays JSON lines.
        logging.basicConfig(format="trainables.train: warning: %(message)s", level=logging.WARNING, stream=sys.stderr)

        def report(metrics: dict, state) -> None:
            _emit(metrics)  # the line first: a run killed in between resumes from the epoch before and says it again
            if args.checkpoint:
                write_checkpoint(state.checkpoint(), args.checkpoint)

        summary = train(config, report=report, resume=resume)
    except (ConfigError, DataNotFoundError) as exc:  # a device this machine lacks among them (DeviceUnavailable)
        print(f"trainables.train: {exc}", file=sys.stderr)
        return BAD_INPUT_EXIT
    _emit({"summary": True, **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
