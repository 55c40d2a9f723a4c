"""HTTP transport of the simulator (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive),
the programmatic ``Simulator`` and ``start_subprocess`` for tests and the Odoo side."""
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .app import SimulatorApp
from .store import Store
from .wire import Request

_logger = logging.getLogger("ksef.simulator")
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
MAX_BODY = 110 * 1000 * 1000  # one batch part (100 MB + padding) plus slack


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KSeFSimulator/1.0"
    app = None  # set on the subclass made per server

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK
        # add ~40 ms to every keep-alive answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        # paths only, never query strings (the signed URLs carry their signature there)
        _logger.debug("%s %s", self.address_string(), fmt % args)

    def _serve(self):
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        request = Request(self.command, parsed.path, urllib.parse.parse_qs(parsed.query), self.headers, body,
                          self.client_address[0], "http://%s" % host)
        try:
            response = self.app.handle(request)
        except Exception:
            _logger.exception("simulator failure on %s %s", self.command, parsed.path)
            from .wire import json_response
            response = json_response(500, {"status": {"code": 500, "description": "Internal Server Error",
                                                      "details": ["Błąd symulatora."]}})
        if response.drop_connection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if response.stall_seconds:
            time.sleep(response.stall_seconds)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Simulator:
    """In-process simulator: ``base_url = Simulator(path).start()`` ... ``.stop()``."""

    def __init__(self, state_path, tokens=(), rate_limits="production", xsd_dir=None, host="127.0.0.1", port=0,
                 processing_delay=0.2, access_token_ttl=900.0, seed=0):
        if host not in ALLOWED_HOSTS:
            raise ValueError("the simulator binds to 127.0.0.1 only")
        self.state_path = str(state_path)
        self.host = "127.0.0.1"
        self.port = port
        self.store = Store(self.state_path)
        self.app = SimulatorApp(self.store, xsd_dir=xsd_dir, tokens=_parse_tokens(tokens), rate_limits=rate_limits,
                                processing_delay=processing_delay, access_token_ttl=access_token_ttl, seed=seed)
        self.httpd = None
        self.thread = None
        self.base_url = None

    def start(self):
        handler = type("Handler", (_Handler,), {"app": self.app})
        self.httpd = _Server((self.host, self.port), handler)
        self.port = self.httpd.server_address[1]
        self.base_url = "http://%s:%d" % (self.host, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ksef-simulator", daemon=True)
        self.thread.start()
        self.app.start_script_ticker()
        return self.base_url

    def serve_forever(self):
        if self.httpd is None:
            handler = type("Handler", (_Handler,), {"app": self.app})
            self.httpd = _Server((self.host, self.port), handler)
            self.port = self.httpd.server_address[1]
            self.base_url = "http://%s:%d" % (self.host, self.port)
        self.app.start_script_ticker()
        self.httpd.serve_forever()

    def stop(self):
        self.app.stop_script_ticker()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        for worker in list(self.app.workers):
            worker.join(timeout=60)
        self.store.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def _parse_tokens(tokens):
    """Accept ``[("NIP", "TOKEN")]``, ``["NIP:TOKEN"]`` or ``{"NIP": "TOKEN"}``."""
    if isinstance(tokens, dict):
        tokens = list(tokens.items())
    parsed = []
    for entry in tokens or ():
        if isinstance(entry, str):
            nip, sep, token = entry.partition(":")
            if not sep or not nip or not token:
                raise ValueError("token must look like NIP:TOKEN")
            entry = (nip, token)
        parsed.append((str(entry[0]), str(entry[1])))
    return parsed


def package_root():
    """The directory that contains the ``ksef`` package (put on PYTHONPATH for ``-m ksef.simulator``)."""
    return Path(__file__).resolve().parents[2]


def simulator_command(state, port=0, tokens=(), rate_limits="production", xsd_dir=None, processing_delay=None,
                      access_token_ttl=None, extra_args=()):
    """The argv of ``python -m ksef.simulator`` (this interpreter) for these options."""
    args = [sys.executable, "-m", "ksef.simulator", "--host", "127.0.0.1", "--port", str(port),
            "--state", str(state), "--rate-limits", rate_limits]
    for nip, token in _parse_tokens(tokens):
        args += ["--token", "%s:%s" % (nip, token)]
    if xsd_dir:
        args += ["--xsd-dir", str(xsd_dir)]
    if processing_delay is not None:
        args += ["--processing-delay", str(processing_delay)]
    if access_token_ttl is not None:
        args += ["--access-token-ttl", str(access_token_ttl)]
    return args + list(extra_args)


def simulator_env(env=None):
    """``env`` (default: ours) with the ``ksef`` package's directory first on PYTHONPATH."""
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root()), child_env.get("PYTHONPATH")]))
    return child_env


def start_subprocess(state, port=0, tokens=(), rate_limits="production", xsd_dir=None, processing_delay=None,
                     access_token_ttl=None, extra_args=(), log_path=None, timeout=30.0, env=None):
    """Start ``python -m ksef.simulator`` and wait until it answers.

    Returns ``(process, base_url)``; stop it with ``stop_subprocess(process)``. Its log goes to
    ``log_path`` (or nowhere), so a parent that stops reading stdout never blocks it."""
    args = simulator_command(state, port, tokens, rate_limits, xsd_dir, processing_delay, access_token_ttl,
                             extra_args)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                   env=simulator_env(env), cwd=str(package_root()))
    finally:
        if log_path:
            log.close()
    first_line = _read_line(process, timeout)
    if not first_line.startswith("http://"):
        stop_subprocess(process)
        raise RuntimeError("KSeF simulator did not start (first line: %r)" % first_line)
    base_url = first_line.strip()
    _wait_until_up(base_url, process, timeout)
    return process, base_url


def _read_line(process, timeout):
    result = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result:
        stop_subprocess(process)
        raise RuntimeError("KSeF simulator did not print its URL within %.0f s" % timeout)
    return result[0].decode("utf-8", "replace")


def _wait_until_up(base_url, process, timeout):
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("KSeF simulator exited with code %s" % process.returncode)
        try:
            with urllib.request.urlopen(base_url + "/_control/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    stop_subprocess(process)
    raise RuntimeError("KSeF simulator at %s did not answer within %.0f s" % (base_url, timeout))


def stop_subprocess(process, timeout=10.0):
    """Terminate a simulator started by ``start_subprocess`` (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    if process.stdout:
        process.stdout.close()
