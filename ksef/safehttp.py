"""Data from outside, read defensively: XML without entities or network, HTTP answers with a
total deadline and a size cap.

* XML (UPO, XAdES, anything a server or a user sends): no DTD loaded, no entity resolved, no
  network access, so a hostile document cannot make the parser read local files or call out.
* HTTP: ``requests``' ``timeout`` bounds each socket read, not the call: a server that drips one
  byte per second holds it for ever. ``bounded_request`` streams the answer, stops at a total
  deadline and at a size cap, and refuses anything but http(s) addresses.
"""
import time

import requests
from lxml import etree

from .safeurl import UnsafeUrl, http_url

CHUNK = 64 * 1024
# KSeF answers are small JSON documents and UPOs; a batch session's UPO lists up to 10,000
# invoices (~1 kB each).
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class ResponseTooLarge(requests.RequestException):
    """The answer is larger than the caller accepts."""


class DeadlineExceeded(requests.Timeout):
    """The whole call took longer than its deadline (however slowly the bytes came)."""


def xml_parser():
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False)


def parse_xml(xml_bytes):
    """The root element of ``xml_bytes``, parsed with ``xml_parser()``."""
    return etree.fromstring(xml_bytes, xml_parser())


def check_timeout(timeout):
    """``timeout`` as a positive float, else ``ValueError`` (requests' own error is a traceback)."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise ValueError("the timeout must be a number of seconds, not %r" % (timeout,)) from None
    if not value > 0:
        raise ValueError("the timeout must be more than 0 seconds, not %s" % value)
    return value


def bounded_request(session, method, url, timeout, max_bytes=DEFAULT_MAX_BYTES, **kwargs):
    """``session.request(method, url, ...)`` whose whole answer arrives within ``timeout``
    seconds and ``max_bytes`` bytes; raises ``DeadlineExceeded`` (a ``requests.Timeout``),
    ``ResponseTooLarge`` (a ``requests.RequestException``) or ``UnsafeUrl`` (a ``ValueError``).
    The returned response has its body read (``.content``, ``.json()`` work as usual)."""
    timeout = check_timeout(timeout)
    http_url(url)
    deadline = time.monotonic() + timeout
    # The raw bytes, so that they can be read as they come (one socket read at a time).
    kwargs["headers"] = {**(kwargs.get("headers") or {}), "Accept-Encoding": "identity"}
    response = session.request(method, url, timeout=timeout, stream=True, **kwargs)
    complete = False
    try:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge("the answer of %s %s announces %s bytes, more than %d"
                                   % (method, url, declared, max_bytes))
        raw = response.raw
        fp = getattr(raw, "_fp", None)
        read = fp.read1 if hasattr(fp, "read1") else raw.read
        body = bytearray()
        while True:
            if time.monotonic() > deadline:
                raise DeadlineExceeded("the answer of %s %s took more than %s s" % (method, url, timeout))
            chunk = read(CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise ResponseTooLarge("the answer of %s %s is larger than %d bytes" % (method, url, max_bytes))
        if fp is not None and hasattr(fp, "read1"):
            fp.read()   # at its end already: lets http.client mark the answer done, so the connection is reusable
        complete = True
    finally:
        original = getattr(response.raw, "_original_response", None)
        if complete and original is not None and not original.will_close and hasattr(response.raw, "release_conn"):
            response.raw.release_conn()   # read to its end: the kept-alive connection serves the next call
        else:
            response.close()
    response._content = bytes(body)   # noqa: SLF001 - requests' own cache of the body
    response._content_consumed = True  # noqa: SLF001
    return response


__all__ = ["DeadlineExceeded", "ResponseTooLarge", "UnsafeUrl", "bounded_request", "check_timeout",
           "parse_xml", "xml_parser"]
