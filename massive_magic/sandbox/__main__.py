"""``python -m massive_magic.sandbox [--port N]``: serve the demo in the foreground."""

from __future__ import annotations

import argparse
import sys

from . import Sandbox

__all__ = ["main", "port_number"]


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535; else a usage error."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535; 0 picks a free one)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m massive_magic.sandbox",
        description="Serve a Metabase-compatible sandbox with Massive demo data.",
    )
    parser.add_argument(
        "--port", type=port_number, default=3000, help="TCP port (0: any free port)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    args = parser.parse_args(argv)
    try:
        srv = Sandbox(args.host, args.port)
    except (OSError, OverflowError) as exc:  # in use, not allowed, no such address
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"Cannot listen on {args.host}:{args.port}: {reason}.", file=sys.stderr)
        print("Pick another port with --port N (0 picks a free one).", file=sys.stderr)
        return 2
    # The demo credentials are public fixtures of the sandbox, not secrets.
    print(f"Metabase sandbox at {srv.url}", flush=True)
    print(f"  username: {srv.username}", flush=True)
    print(f"  password: {srv.password}", flush=True)
    print(f"  API key:  {srv.api_key}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
