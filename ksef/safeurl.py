"""Addresses the KSeF core calls: parsed, never matched as text.

``http://127.0.0.1:1@other-host:8080`` starts with ``http://127.0.0.1:`` and goes to
``other-host``; ``file:///etc/passwd`` is not a KSeF outage. Every address is split by
``urllib.parse`` and judged by its parts.
"""
import ipaddress
import urllib.parse

LOCAL_NAMES = ("localhost",)


class UnsafeUrl(ValueError):
    """An address the KSeF core refuses to call (the message says why, in English)."""


def http_url(url):
    """``url`` when it is an http(s) address with a host and no user-info; ``UnsafeUrl`` otherwise."""
    text = (url or "").strip()
    try:
        parts = urllib.parse.urlsplit(text)
        _port = parts.port   # raises ValueError on a port that is not a number
    except ValueError as error:
        raise UnsafeUrl("%r is not a valid address (%s)" % (text, error)) from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("%r is not an http(s) address" % text)
    if not parts.hostname:
        raise UnsafeUrl("%r has no host" % text)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrl("%r carries a user name or password" % text)
    return text


def is_loopback_host(host):
    if (host or "").lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_simulator_url(url):
    """The normalized ``http://<loopback>:<port>`` of a simulator on this machine, or ``UnsafeUrl``:
    scheme http, host a loopback address (or localhost), an explicit port, no user-info, no path
    other than ``/``, no query, no fragment."""
    text = http_url(url)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "http":
        raise UnsafeUrl("%r: a local simulator is reached over plain http" % text)
    if not is_loopback_host(parts.hostname):
        raise UnsafeUrl("%r is not on this machine (a loopback address such as 127.0.0.1)" % text)
    if not parts.port:
        raise UnsafeUrl("%r has no port" % text)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UnsafeUrl("%r has a path, query or fragment" % text)
    host = parts.hostname
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%d" % (host, parts.port)
