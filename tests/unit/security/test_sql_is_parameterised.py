"""SQL built by the platform never interpolates strings: values go as driver parameters, identifiers
through psycopg.sql.Identifier. A static check over every Python file we ship."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SHIPPED = ["streamflow", "dags", "plugins", "flink_app", "generator", "bench"]
EXECUTORS = {"execute", "executemany", "mogrify", "copy"}


def _interpolated(node: ast.expr) -> bool:
    """An f-string with placeholders, `%` formatting, `.format()` or `+` concatenation of a string."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        literal = isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
        return literal or isinstance(node.left, ast.JoinedStr)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
    return False


def test_no_string_interpolation_into_execute() -> None:
    offenders = []
    for top in SHIPPED:
        for path in (REPO / top).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in EXECUTORS and node.args and _interpolated(node.args[0])):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == [], "SQL built by string interpolation (use parameters / sql.Identifier): " + ", ".join(
        offenders)


def test_the_check_catches_interpolation() -> None:
    bad = ast.parse('cur.execute(f"SELECT * FROM t WHERE id = {user_id}")').body[0]
    good = ast.parse('cur.execute("SELECT * FROM t WHERE id = %s", (user_id,))').body[0]
    assert isinstance(bad, ast.Expr) and isinstance(good, ast.Expr)
    assert isinstance(bad.value, ast.Call) and isinstance(good.value, ast.Call)
    assert _interpolated(bad.value.args[0])
    assert not _interpolated(good.value.args[0])
