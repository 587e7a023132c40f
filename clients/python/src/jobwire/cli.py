"""The ``jobwire-py`` command (also ``python -m jobwire``): ``worker`` runs a listener of yours.

    python -m jobwire worker exports:listener --concurrency 8 --grace-seconds 10

``exports:listener`` is ``module:attribute``: a ``Listener`` object, or a function that returns one.
SIGTERM or SIGINT starts a graceful shutdown (no new events or jobs, running handlers may finish for
``--grace-seconds``, then their jobs are released); a second one exits at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from typing import Any, Optional

from .client import default_commands, default_events
from .connection import parse_endpoints
from .listener import Listener


def load_listener(target: str) -> Listener:
    """``module:attribute`` (``attribute`` defaults to ``listener``) as a ``Listener``."""
    module_name, _, attribute = target.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SystemExit(f"jobwire worker: cannot import {module_name!r}: {error}") from error
    value: Any = module
    for part in (attribute or "listener").split("."):
        if not hasattr(value, part):
            raise SystemExit(f"jobwire worker: {module_name!r} has no attribute {attribute or 'listener'!r}")
        value = getattr(value, part)
    if not isinstance(value, Listener) and callable(value):
        value = value()
    if not isinstance(value, Listener):
        raise SystemExit(f"jobwire worker: {target!r} is a {type(value).__name__}, not a jobwire.Listener")
    return value


def worker(args: argparse.Namespace) -> int:
    listener = load_listener(args.target)
    if args.concurrency is not None:
        listener.concurrency = max(1, args.concurrency)
    if args.grace_seconds is not None:
        listener.grace_seconds = args.grace_seconds
    for option, value in (("--commands", args.commands), ("--events", args.events)):
        if value:
            try:
                parse_endpoints(value)
            except ValueError as error:
                raise SystemExit(f"jobwire worker: {option}: {error}") from None
    if args.commands:
        listener.commands = args.commands
    if args.events:
        listener.events = args.events
    if args.name:
        listener.name = args.name
    signals = {"count": 0}

    def on_signal(signum: int, _: Any) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            logging.getLogger("jobwire").warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        listener.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    listener.run()
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="jobwire-py", description="Jobwire for Python.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("worker", help="run a listener (module:attribute) until SIGTERM",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("target", help="module:attribute of a jobwire.Listener (or of a function returning one)")
    run.add_argument("--concurrency", type=int, help="handlers that run at once (default: the listener's, 8)")
    run.add_argument("--grace-seconds", type=float, help="on SIGTERM, how long running handlers may finish")
    run.add_argument("--name", help="the listenerId (default: the listener's name)")
    run.add_argument("--commands", help=f"commands endpoint, or a comma-separated list of brokers "
                                        f"(env JOBWIRE_COMMANDS, now {default_commands()})")
    run.add_argument("--events", help=f"events endpoint, or a comma-separated list "
                                      f"(env JOBWIRE_EVENTS, now {default_events()})")
    run.add_argument("--log-level", default=os.environ.get("JOBWIRE_LOG_LEVEL", "info"),
                     choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "worker":
        return worker(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
