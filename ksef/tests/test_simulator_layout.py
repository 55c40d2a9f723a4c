"""The simulator's layout (issue 14): every file under ~600 lines, SQL only in ``store.py`` (and
the DDL in ``schema.py``), status codes and their Polish descriptions only in ``statuses.py``,
and ``SimulatorApp`` composed of the API-area modules."""
import ast
import re
from pathlib import Path

import ksef.simulator
from ksef.simulator import statuses
from ksef.simulator.app import SimulatorApp

SIMULATOR = Path(ksef.simulator.__file__).parent
MAX_LINES = 600
SQL_HOMES = {"store.py", "schema.py"}
API_MODULES = ("auth_api.py", "sessions_api.py", "batch_api.py", "acceptance.py", "invoices_api.py",
               "queries_api.py", "received.py", "collective.py", "certificates_api.py", "latarnia_api.py",
               "control_api.py", "script_api.py", "app.py")
SQL_TEXT = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                      r"CREATE\s+(TABLE|INDEX|UNIQUE))\b", re.IGNORECASE | re.DOTALL)
DB_CALLS = {"execute", "executemany", "executescript"}
STORE_RAW = {"one", "all", "run", "db"}  # Store's raw SQL doors


def sql_in(source):
    """Where ``source`` (Python) holds SQL: string constants that read as SQL, cursor calls, or
    ``store.one/all/run/db`` (the raw doors of the store)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_TEXT.search(node.value):
            found.append("line %d: SQL text %r" % (node.lineno, node.value[:60]))
        elif isinstance(node, ast.Attribute) and node.attr in DB_CALLS:
            found.append("line %d: .%s" % (node.lineno, node.attr))
        elif (isinstance(node, ast.Attribute) and node.attr in STORE_RAW and isinstance(node.value, ast.Attribute)
              and node.value.attr == "store"):
            found.append("line %d: store.%s" % (node.lineno, node.attr))
    return found


def modules():
    return sorted(SIMULATOR.glob("*.py"))


def test_every_simulator_file_is_under_600_lines():
    long = {path.name: n for path in modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, "split these files on their seams: %s" % long


def test_no_sql_outside_the_store():
    assert set(API_MODULES) <= {path.name for path in modules()}
    offenders = {path.name: sql_in(path.read_text(encoding="utf-8"))
                 for path in modules() if path.name not in SQL_HOMES}
    offenders = {name: where for name, where in offenders.items() if where}
    assert not offenders, "SQL belongs in store.py: %s" % offenders


def test_the_sql_detector_sees_sql():
    # the check above must be able to fail: each kind of SQL it is meant to catch is caught
    assert sql_in('self.store.one("SELECT * FROM sessions WHERE reference = ?", (ref,))')
    assert sql_in('q = "select id from x"')
    assert sql_in('db.execute(query)')
    assert sql_in('self.store.run(statement)')
    assert sql_in('"INSERT OR REPLACE INTO t (a) VALUES (?)"')
    assert sql_in('"UPDATE ksef_certificates SET status = ?"')
    assert not sql_in('raise ApiError(400, 21180, "Status sesji nie pozwala na wykonanie operacji.")')
    assert not sql_in('self.store.session(ref)')
    assert sql_in((SIMULATOR / "store.py").read_text(encoding="utf-8"))


def test_status_descriptions_live_only_in_statuses():
    tables = (statuses.INVOICE_STATUS, statuses.ONLINE_STATUS, statuses.BATCH_STATUS, statuses.AUTH_STATUS,
              statuses.ENROLLMENT_STATUS)
    descriptions = {text for table in tables for text in table.values()}
    elsewhere = {}
    for path in modules():
        if path.name == "statuses.py":
            continue
        constants = {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        if constants & descriptions:
            elsewhere[path.name] = sorted(constants & descriptions)
    assert not elsewhere, "status descriptions belong in statuses.py: %s" % elsewhere
    assert statuses.session_status_description("Online", 440) == "Sesja anulowana"
    assert statuses.session_status_description("Batch", 420) == "Przekroczony limit faktur w sesji"


def test_the_app_is_composed_of_the_api_areas():
    names = {base.__module__.rsplit(".", 1)[-1] for base in SimulatorApp.__mro__[1:] if base is not object}
    assert names == {name[:-3] for name in API_MODULES if name != "app.py"}
    app_source = (SIMULATOR / "app.py").read_text(encoding="utf-8")
    handlers = [node.name for node in ast.walk(ast.parse(app_source))
                if isinstance(node, ast.FunctionDef) and node.name.startswith(("auth_", "online_", "batch_",
                                                                               "invoice_", "session_", "latarnia_",
                                                                               "control_"))]
    assert not handlers, "handlers belong in their area's module, not app.py: %s" % handlers
