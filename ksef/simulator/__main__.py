# pylint: disable=print-used  # a command-line program: printing is its output
"""``python -m ksef.simulator --port N --state FILE [...]``: see ``ksef.simulator`` for the options."""
import argparse
import logging
import signal
import sys
import threading

from .server import ALLOWED_HOSTS, Simulator


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ksef.simulator", description="Local KSeF 2.0 simulator.")
    parser.add_argument("--host", default="127.0.0.1", help="only 127.0.0.1 (or localhost) is allowed")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--state", required=True, help="SQLite file holding all state")
    parser.add_argument("--token", action="append", default=[], metavar="NIP:TOKEN",
                        help="register a KSeF token for a NIP (repeatable)")
    parser.add_argument("--rate-limits", choices=("production", "off"), default="production")
    parser.add_argument("--xsd-dir", help="directory of the FA(3) XSD (default: $KSEF_SHARED/ksef/xsd/FA3)")
    parser.add_argument("--processing-delay", type=float, default=0.2,
                        help="seconds an invoice/auth/session stays in 100/150 before its final status")
    parser.add_argument("--access-token-ttl", type=float, default=900.0, help="access token lifetime, seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault-injection random generator")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if args.host not in ALLOWED_HOSTS:
        parser.error("--host must be 127.0.0.1: the simulator never listens on other addresses")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    simulator = Simulator(args.state, tokens=args.token, rate_limits=args.rate_limits, xsd_dir=args.xsd_dir,
                          port=args.port, processing_delay=args.processing_delay,
                          access_token_ttl=args.access_token_ttl, seed=args.seed)
    # Before the simulator answers: a launcher may stop it as soon as it does (a drill's end).
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    simulator.start()
    print(simulator.base_url, flush=True)
    stopped.wait()
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
