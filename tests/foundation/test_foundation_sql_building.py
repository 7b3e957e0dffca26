"""No SQL is built by string formatting: every value reaches the database as a bound
parameter (SQLAlchemy Core expressions or `sa.text` with `:names`).

The check reads the source, not the running code: a call that hands SQL to the database
(`text`, `execute`, `exec_driver_sql`, `executescript`) must not get an f-string with a
substitution, a `%` or `+` on a string, or a `.format()` call. A formatted piece that
only ever holds a constant of our own is listed in ALLOWED with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = (
    "alerts",
    "analyzer",
    "app",
    "collector",
    "core",
    "feedback",
    "migrations",
    "sdk",
    "server",
    "store",
)
SQL_CALLS = frozenset({"text", "execute", "exec_driver_sql", "executescript"})
ALLOWED = {
    # An int constant of the module: PRAGMA takes no bound parameters.
    ("store/base.py", "SQLITE_BUSY_TIMEOUT_MS"),
    # Identifiers, not values: the COPY staging table's name and the events columns, both
    # module constants (COPY has no parameters; the rows travel in the COPY stream).
    ("collector/bulk_insert.py", "_STAGING"),
    ("collector/bulk_insert.py", "_COLUMNS_SQL"),
}


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _formatted_names(node: ast.expr) -> list[str] | None:
    """The source of each substituted piece when `node` builds a string by formatting;
    None when it does not."""
    if isinstance(node, ast.JoinedStr):
        pieces = [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
        return pieces or None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        sides = (node.left, node.right)
        if any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides) or any(
            isinstance(s, ast.JoinedStr) for s in sides
        ):
            return [ast.unparse(s) for s in sides if not isinstance(s, ast.Constant)]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    ):
        return [ast.unparse(a) for a in node.args] + [ast.unparse(k.value) for k in node.keywords]
    return None


def formatted_sql(source: str, relative: str) -> list[str]:
    """`path:line: call(...)` for each SQL call in `source` given a formatted string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or _called_name(node) not in SQL_CALLS or not node.args:
            continue
        pieces = _formatted_names(node.args[0])
        if pieces is None or all((relative, piece) in ALLOWED for piece in pieces):
            continue
        found.append(f"{relative}:{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_no_sql_is_built_by_string_formatting():
    found = []
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            found += formatted_sql(path.read_text(), relative)
    assert found == [], "SQL built by formatting (bind parameters instead):\n" + "\n".join(found)


def test_the_check_finds_each_way_of_formatting_sql():
    source = """
connection.execute(sa.text(f"SELECT * FROM events WHERE model = '{model}'"))
connection.exec_driver_sql("DELETE FROM events WHERE seq < %d" % seq)
connection.execute(sa.text("SELECT * FROM " + table))
cursor.execute("SELECT {}".format(column))
connection.execute(sa.text("SELECT * FROM events WHERE model = :model"), {"model": model})
cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
"""
    found = formatted_sql(source, "store/base.py")
    assert sorted(int(line.split(":")[1]) for line in found) == [2, 3, 4, 5]
