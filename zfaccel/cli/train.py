"""``zfaccel train``: train the demo model on the generated shapes data (about 2 minutes on 2 quiet CPU cores).

Writes small_zfnet.pt (the weights), small_zfnet_training.json (the log),
small_zfnet_evolution.npz / .png (paper Fig. 4) and checkpoint.pt into --out;
Ctrl-C keeps every finished epoch, and --resume continues from there. The
bundled model is replaced only when asked with --bundle. --first-layer alexnet
trains the variant of Fig. 6 (AlexNet-like 9x9 / 4 first layer) into
small_zfnet_alexnet.pt and small_zfnet_alexnet_training.json.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from zfaccel.cli.common import output_folder


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the demo model on the shapes data (paper Fig. 4 on the way)",
                       description=__doc__)  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("zfaccel-train"), help="output folder (default: ./zfaccel-train)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the training images (default 8)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out after its last epoch")
    p.add_argument("--seed", type=int, default=0, help="initial weights, shuffling, flips and dropout (default 0)")
    p.add_argument("--train-size", type=int, default=None, help="training images (default 12000)")
    p.add_argument("--test-size", type=int, default=None, help="held-out images scored each epoch (default 2000)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 2)")
    p.add_argument("--first-layer", choices=("zfnet", "alexnet"), default="zfnet",
                   help="zfnet: 5x5 / 2 (the bundled model); alexnet: 9x9 / 4 (Fig. 6's variant)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--bundle", action="store_true",
                   help="when done, copy the weights, log and evolution record over the bundled ones in the "
                        "installed package (zfaccel/assets)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from zfaccel.demo.train import ResumeError, TrainConfig, bundled, train
    from zfaccel.models.registry import SMALL_WEIGHTS

    given = {"epochs": args.epochs, "train_size": args.train_size, "test_size": args.test_size, "threads": args.threads}
    config = TrainConfig.for_first_layer(
        args.first_layer, seed=args.seed, **{k: v for k, v in given.items() if v is not None}
    )
    # A resumed run's folder must exist already (train refuses one without a checkpoint): create none.
    out = args.out if args.resume else output_folder(args.out)
    try:
        result = train(out, config, resume=args.resume, show_progress=not args.quiet)
    except ResumeError as err:  # in the command's words: --resume, --out
        raise ValueError(err.describe("--resume", "--out")) from None
    seconds = result.log["seconds"]
    print(f"test accuracy {result.test_accuracy:.1%} after {config.epochs} epochs, {seconds:.0f} s; "
          f"wrote {result.weights}, {result.log_file}, {result.figure}")  # fmt: skip
    if args.bundle:
        assets = SMALL_WEIGHTS.parent
        assets.mkdir(exist_ok=True)
        names = bundled(config.first_layer)
        for name in names:
            shutil.copyfile(result.weights.parent / name, assets / name)
        print(f"replaced the bundled {', '.join(names)} in {assets}")
    return 0
