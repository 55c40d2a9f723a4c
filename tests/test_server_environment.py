"""The Python environment set up by scripts/setup.sh runs Odoo the way production does."""
import subprocess
import sys

from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestKsefMultiProcessServer(TransactionCase):

    def test_gevent_process_of_the_multi_process_server_starts(self):
        """Production runs Odoo with --workers: its websocket process patches the standard library
        with gevent first. With zope.interface/zope.event metadata the old pkg_resources cannot
        read, that fails at start, over and over (found by the multi-worker benchmark)."""
        started = subprocess.run(
            [sys.executable, "-c", "import gevent.monkey; gevent.monkey.patch_all(); print('patched')"],
            capture_output=True, text=True, timeout=60, check=False)
        self.assertEqual(started.returncode, 0, started.stderr[-2000:])
        self.assertIn("patched", started.stdout)
