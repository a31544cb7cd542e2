"""A join app's try records the tasks it joined: ``dependency`` rows of kind ``join`` and Parsl's
``try.task_joins``, beside the ``data`` edges of ordinary arguments."""
from __future__ import annotations

from sqlalchemy import select

from parsl_repro.monitoring import models as m
from tests.monitoring.conftest import Workspace

JOINING = """
    import parsl_repro as parsl
    from parsl_repro import join_app, python_app


    @python_app
    def square(x):
        return x * x


    @join_app
    def squares(n):
        return [square(i) for i in range(n)]


    @join_app
    def one(x):
        return square(x)


    with parsl.load():
        assert squares(3).result() == [0, 1, 4]
        assert one(square(2)).result() == 16
"""


def test_join_edges_are_recorded(tmp_path, backend):
    ws = Workspace(tmp_path)
    ws.write("wf.py", JOINING)
    ws.run()
    with ws.engine.connect() as conn:
        names = {t: name for t, name in conn.execute(select(m.Task.task_id, m.Task.task_func_name))}
        edges = {(names[t], names[d], kind) for t, d, kind in conn.execute(
            select(m.Dependency.task_id, m.Dependency.depends_on, m.Dependency.kind))}
        joins = {names[t]: j for t, j in conn.execute(select(m.Try.task_id, m.Try.task_joins)
                                                      .where(m.Try.task_joins.is_not(None)))}
        by_kind = {kind: n for kind, n in conn.execute(
            select(m.Dependency.kind, m.Dependency.depends_on).where(m.Dependency.task_id == 0))}
    assert edges == {("squares", "square", "join"), ("one", "square", "data"), ("one", "square", "join")}
    assert len(joins["squares"].split(",")) == 3 and len(joins["one"].split(",")) == 1
    assert set(by_kind) == {"join"}
