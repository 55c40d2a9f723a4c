"""Print a report as the user gets it: styled, with its letterhead.

wkhtmltopdf fetches the report's CSS from ``report.url``; during a test, Odoo's own server would
answer from a cursor that waits on the test transaction. So the asset bundles are built in the
test transaction first, and a small HTTP server on 127.0.0.1 serves exactly those files to
wkhtmltopdf: the PDF is laid out with the real report styles, read back page by page.
"""
import re
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from odoo.tools.misc import file_path


class _AssetServer:
    def __init__(self, files):
        self.files = files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805 - the handler instance
                path = handler.path.split("?", 1)[0]
                body = files.get(path)
                static = re.fullmatch(r"/(\w+)/static/([\w./-]+)", path)
                if body is None and static and ".." not in path:
                    try:  # fonts and images the style sheets refer to, from the add-ons
                        body = Path(file_path("%s/static/%s" % static.groups())).read_bytes()
                    except (FileNotFoundError, ValueError):
                        body = None
                if body is None:
                    handler.send_response(404)
                    handler.end_headers()
                    return
                handler.send_response(200)
                handler.send_header("Content-Type", "text/css" if handler.path.endswith(".css") else "application/octet-stream")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):  # noqa: N805
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class StyledPdfMixin:
    """``_styled_pdf_pages(report, records)`` -> [(text, codes)] per printed page: the text layer
    (pdftotext -layout) and the QR codes zbarimg decodes from the page rasterised at 200 dpi."""

    def _styled_pdf(self, report, records):
        Report = self.env["ir.actions.report"].with_context(force_report_rendering=True)
        html = Report._render_qweb_html(report, records.ids)[0]
        files = {}
        for href in set(re.findall(r'href="(/web/assets/[^"]+\.css)"', html.decode())):
            name = href.rsplit("/", 1)[1].removesuffix(".css").removesuffix(".min")
            files[href] = self.env["ir.qweb"]._get_asset_bundle(name, css=True, js=False).css().raw
        self.assertTrue(files, "the report links its style sheets")
        config = self.env["ir.config_parameter"].sudo()
        previous = config.get_param("report.url")
        with _AssetServer(files) as url:
            config.set_param("report.url", url)
            try:
                pdf, _type = Report._render_qweb_pdf(report, records.ids)
            finally:
                config.set_param("report.url", previous or "")
        self.assertTrue(pdf.startswith(b"%PDF"))
        return pdf

    def _pdf_words(self, pdf):
        """[[(word, x_min, y_min, x_max, y_max)] per page], in points from the page's top left."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "report.pdf"
            path.write_bytes(pdf)
            html = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, check=True).stdout.decode()
        word_re = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')
        return [
            [(match.group(5), *(float(match.group(i)) for i in range(1, 5))) for match in word_re.finditer(page)]
            for page in html.split("<page ")[1:]
        ]

    def _ink_starts_at(self, pdf, page, box):
        """Where the first ink of a printed word's box ``(x_min, y_min, x_max, y_max)`` (points) lies,
        as a share of the box's height: about 0.2 for a whole line of text (the ascender's room
        above capitals), about 0.5 and more when its top is cut off by the page body's edge or
        covered by a letterhead."""
        from PIL import Image

        dpi = 200
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "report.pdf"
            path.write_bytes(pdf)
            subprocess.run(["pdftoppm", "-f", str(page), "-l", str(page), "-r", str(dpi), "-gray", "-png", "-singlefile",
                            str(path), str(Path(tmp) / "page")], check=True)
            image = Image.open(Path(tmp) / "page.png").convert("L")
            scale = dpi / 72
            x_min, y_min, x_max, y_max = (int(value * scale) for value in box)
            for y in range(y_min, y_max + 1):
                if any(image.getpixel((x, y)) < 128 for x in range(x_min, x_max + 1)):
                    return (y - y_min) / max(y_max - y_min, 1)
        return 1.0

    def _pdf_pages(self, pdf, keep=None):
        pages = []
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "report.pdf"
            path.write_bytes(pdf)
            if keep:
                Path(keep).write_bytes(pdf)
            info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True).stdout.decode()
            count = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
            for number in range(1, count + 1):
                text = subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), "-layout", str(path), "-"],
                                      capture_output=True, check=True).stdout.decode()
                image = Path(tmp) / ("page-%d" % number)
                subprocess.run(["pdftoppm", "-f", str(number), "-l", str(number), "-r", "200", "-png", "-singlefile",
                                str(path), str(image)], check=True)
                run = subprocess.run(["/usr/bin/zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                                      str(image) + ".png"], capture_output=True)
                self.assertIn(run.returncode, (0, 4), run.stderr)  # 4 = no code on this page
                pages.append((text, [line for line in run.stdout.decode().splitlines() if line]))
        return pages
