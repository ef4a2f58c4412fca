"""`workbench` / `python -m workbench`: the desktop app, or the headless CLI.

    workbench                      open the app
    workbench train CONFIG.json    headless sub-commands (train, scan, ...) run the CLI
    workbench --install-launcher   add Workbench to the desktop's application menu
"""

from __future__ import annotations

import argparse
import sys


def _gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Point-and-click transfer learning. Without arguments the app opens; "
        "headless sub-commands (workbench train CONFIG.json, workbench scan FOLDER, ...) "
        "run the command-line interface (workbench train --help).",
    )
    parser.add_argument("--config", metavar="FILE", help="open this config (JSON) at start")
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow's own log lines through to the terminal")
    parser.add_argument("--install-launcher", action="store_true",
                        help="install the desktop menu entry and icon for this user, then exit")
    auto = parser.add_argument_group("automation (demos, tests, screenshots)")
    auto.add_argument("--train-on-start", action="store_true",
                      help="start training as soon as the window is shown")
    auto.add_argument("--epochs", type=int, metavar="N", help="override the number of epochs")
    auto.add_argument("--quit-after-run", action="store_true",
                      help="quit when the run ends (exit 0 finished, 1 failed, 2 invalid config)")
    auto.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window when the run ends")
    auto.add_argument("--quit-when-shown", action="store_true",
                      help="print when the window has painted (and whether TensorFlow was loaded), then quit")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = [a for a in argv if a != "--verbose"]  # `workbench --verbose train ...` is the CLI's too
    if command and not command[0].startswith("-"):
        from workbench.cli import main as cli_main

        return cli_main(argv)

    options = _gui_parser().parse_args(argv)
    if options.install_launcher:
        from workbench.desktop import install_launcher

        files = install_launcher()
        print(f"Installed {files.desktop_file}")
        for icon in files.icons:
            print(f"Installed {icon}")
        print(f"The launcher runs: {files.command}")
        return 0

    from workbench.core.base.quiet import quiet_terminal

    quiet_terminal(options.verbose)  # before anything imports TensorFlow (the fork server inherits it)
    from workbench.ui.app import run_app

    return run_app(options)


if __name__ == "__main__":
    sys.exit(main())
