"""Train hide + reveal networks: `python train.py model=subpixel beta=0.75`.

Configs live in conf/ (see conf/train.yaml); all the work is in steg.training.loop.
A bad setting or file ends the run with one line on stderr naming it (exit code 1)
and removes the run folder Hydra made for it, if nothing was trained into it;
HYDRA_FULL_ERROR=1 shows the traceback instead.
"""

import os
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


def _root_cause(exc: BaseException) -> BaseException:
    """The constructor's own error, which Hydra wraps in InstantiationException."""
    from hydra.errors import InstantiationException

    while isinstance(exc, InstantiationException) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _remove_if_untouched(run_dir: Path) -> None:
    """Remove the run folder if it holds only Hydra's .hydra/ and the lock (the run failed before writing anything)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", ".lock"}:
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from steg.io import FolderLockedError, one_line
    from steg.training.loop import train

    try:
        return train(cfg)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        run_dir = Path(cfg.paths.run_dir)
        if not isinstance(exc, FolderLockedError):  # the folder is the other run's
            _remove_if_untouched(run_dir)
        kept = f" (run folder kept, marked failed: {run_dir})" if (run_dir / "metrics.json").is_file() else ""
        print(f"error: {one_line(_root_cause(exc))}{kept}", file=sys.stderr, flush=True)
        sys.exit(1)


#: Groups with a ``none`` option (conf/GROUP/none.yaml) that ``GROUP=null`` stands for: Hydra refuses ``null``
#: for a group whose default is not null, so the config offers ``none`` and the command line may say either.
NONE_GROUPS = ("logger", "scheduler", "callbacks", "debug", "experiment", "hparams_search")


def null_groups(argv: list[str]) -> list[str]:
    """``logger=null`` -> ``logger=none`` (likewise for :data:`NONE_GROUPS`), in sweep lists too.

    >>> null_groups(["logger=null,csv", "scheduler=null", "beta=null", "model=unet"])
    ['logger=none,csv', 'scheduler=none', 'beta=null', 'model=unet']
    """
    out = []
    for arg in argv:
        group, _, value = arg.partition("=")
        if group in NONE_GROUPS and value:
            value = ",".join("none" if v == "null" else v for v in value.split(","))
            arg = f"{group}={value}"
        out.append(arg)
    return out


if __name__ == "__main__":
    sys.argv = null_groups(sys.argv)
    main()
