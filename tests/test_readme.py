"""Every command in the README's code blocks runs as written (only budgets made tiny).

`steg ...` lines run through the CLI in a scratch folder, in order (so `steg samples photos/`
provides the photos the next lines use); `python train.py ...` lines run as a subprocess with
overrides appended that make them a couple of steps long. A command that the README documents
and that fails here fails the test, with the line in the message.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from steg.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: Appended to `steg analyze`: a few training steps of the thief and the steganalyser, two images.
ANALYZE_TINY = ["--thief-steps", "2", "--detector-steps", "2", "--limit", "2", "--size", "64"]
#: Appended to `python train.py`: two steps on tiny images, CSV only.
TRAIN_TINY = ["trainer.max_steps=2", "trainer.max_epochs=1", "trainer.limit_val_batches=1", "data.image_size=32",
              "data.val_tiles=4", "data.batch_size=2", "trainer.num_sanity_val_steps=0", "logger=csv",
              "trainer.enable_progress_bar=false", "trainer.max_time=null"]


def commands(section: str, prefix: str) -> list[str]:
    """The lines starting with ``prefix`` in the ```bash blocks of the README section ``## section``."""
    body = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith(prefix):
                lines.append(line)
    return lines


def test_the_readme_has_the_commands_this_test_runs():
    assert len(commands("Hide and reveal", "steg ")) >= 5
    assert len(commands("Train", ".venv/bin/python train.py")) >= 3
    assert "make demo" in README and "make test" in README


@pytest.mark.slow  # digital hides and a tiny analyze: about a minute on 2 cores
def test_every_steg_command_in_the_readme_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for line in commands("Hide and reveal", "steg "):
        argv = shlex.split(line)[1:]
        if argv[0] == "analyze":
            argv += ANALYZE_TINY
        assert main(argv) == 0, f"{line}\n{capsys.readouterr().err[-2000:]}"
    assert (tmp_path / "revealed.png").is_file() and (tmp_path / "s.png").is_file()
    assert (tmp_path / "security" / "analyze.json").is_file()


@pytest.mark.slow  # each a 2-step run in its own process
def test_every_train_command_in_the_readme_runs(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    for i, line in enumerate(commands("Train", ".venv/bin/python train.py")):
        argv = shlex.split(line)[2:]
        sweep = "-m" in argv
        where = f"hydra.sweep.dir={tmp_path / f'sweep{i}'}" if sweep else f"hydra.run.dir={tmp_path / f'run{i}'}"
        proc = subprocess.run([sys.executable, "train.py", *argv, *TRAIN_TINY, where], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{line}\n{proc.stderr[-3000:]}"
