"""``python -m generator``: parse the config, run, map the outcome to an exit status.

Exit status: 0 all messages delivered; 1 some message was not delivered; 2 invalid configuration
(the message names the flag and its ``GENERATOR_*`` env var).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from generator.config import ConfigError, parse_config
from generator.runner import run

EXIT_OK = 0
EXIT_UNDELIVERED = 1
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    try:
        config = parse_config(argv, environ)
    except ConfigError as error:
        print(f"generator: invalid configuration: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        summary = run(config)
    except BrokenPipeError:  # `--dry-run | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return EXIT_OK
    return EXIT_OK if summary.ok else EXIT_UNDELIVERED
