"""Helpers shared by the command modules: loading, and `--nproc` (relaunch under torchrun)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
import typer

from bertforge.config import EncoderConfig
from bertforge.errors import ConfigError, TokenizerError
from bertforge.tokenization import Tokenizer

log = logging.getLogger(__name__)

NPROC = typer.Option(
    1, "--nproc", help="Data-parallel processes on this machine (runs the command under torchrun)."
)


def relaunch_under_torchrun(nproc: int) -> None:
    """With `--nproc N` (N > 1) outside torchrun, run this same command as `torchrun
    --standalone --nproc-per-node N -m bertforge ...`, wait, and exit with its status.
    Inside torchrun (WORLD_SIZE set) or with N = 1 it returns and the command runs here.

    While it waits, a SIGTERM sent to this process is passed on to torchrun, which passes it
    to the ranks (each finishes its step, they checkpoint, and stop); Ctrl-C reaches the whole
    process group by itself, so here it is only not allowed to kill torchrun first."""
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}; use 1 or more processes")
    if nproc == 1 or "WORLD_SIZE" in os.environ:
        return
    args, argv = [], iter(sys.argv[1:])
    for arg in argv:
        if arg == "--nproc":
            next(argv, None)
        elif not arg.startswith("--nproc="):
            args.append(arg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", "-m", "bertforge", *args]
    log.info("running %s", " ".join(cmd))
    child = subprocess.Popen(cmd)
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM)),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
    }
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    raise typer.Exit(code)


def load_tokenizer(model_dir: Path, tokenizer_dir: Path | None, config: EncoderConfig) -> Tokenizer:
    """The tokenizer saved with the model (or `--tokenizer DIR`), checked to fit the model."""
    source = tokenizer_dir or model_dir
    try:
        tok = Tokenizer.from_pretrained(source)
    except TokenizerError as e:
        if tokenizer_dir is None:
            raise TokenizerError(f"{e} (pass --tokenizer DIR if it is saved elsewhere)") from None
        raise
    config.check_vocab(tok.vocab_size, f"model '{model_dir}' with tokenizer '{source}'")
    return tok


def device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
