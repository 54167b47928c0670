"""`kubestack console log show NAME [--lines N]`: openstackclient's spelling of
`kubestack server console log NAME` (kubestack.cli.server), which does the work."""

from __future__ import annotations

import argparse

from kubestack.cli.output import connection_args, run
from kubestack.cli.server import console_log


def register(sub: argparse._SubParsersAction) -> None:
    console = sub.add_parser("console", help="server console: log show")
    objects = console.add_subparsers(dest="console_object", metavar="OBJECT")
    objects.required = True
    log = objects.add_parser("log", help="a server's console log")
    verbs = log.add_subparsers(dest="console_log_command", metavar="VERB")
    verbs.required = True
    show = verbs.add_parser("show", help="show a server's console log (same as `server console log`)")
    show.add_argument("name", help="server name or ID")
    show.add_argument("--lines", type=int, default=None, help="only the last N lines")
    connection_args(show)
    show.set_defaults(func=run(console_log))
