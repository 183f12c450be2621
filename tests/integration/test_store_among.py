"""`store.db.among` (the bulk reads' `column IN values`) finds exactly the rows asked for, on
either database: ids, and provider ids whatever characters they hold (PostgreSQL receives
them as one array literal, whose quoting must survive commas, quotes, backslashes, braces,
spaces and the word NULL)."""

from __future__ import annotations

from sqlalchemy import select

AWKWARD = ['plain', 'a,b', 'say "hi"', 'back\\slash', 'trail\\', '{braced}', 'NULL', 'null',
           ' padded ', '', 'Ålesund-ž', "it's", 'x' * 64]


def test_among_finds_exactly_the_rows_asked_for(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import among, array_literal, db
    from store.models import Organisation, OwnDocument

    with app.app_context():
        session = db.session
        org = Organisation(name="Among Ltd", country="GB", timezone="Europe/London",
                           base_currency="GBP")
        session.add(org)
        session.flush()
        for provider_id in [*AWKWARD, 'decoy', 'a', 'b', 'say', 'back']:
            session.add(OwnDocument(org_id=org.id, provider_id=provider_id))
        session.commit()
        ids = {d.provider_id: d.id for d in session.scalars(select(OwnDocument))}

        def found(column, values):  # type: ignore[no-untyped-def]
            return set(session.scalars(select(column).where(among(session, column, values))))

        assert found(OwnDocument.provider_id, AWKWARD) == set(AWKWARD)
        assert found(OwnDocument.provider_id, ['a,b']) == {'a,b'}
        assert found(OwnDocument.provider_id, ['nowhere']) == set()
        assert found(OwnDocument.provider_id, []) == set()
        wanted = [ids[p] for p in AWKWARD[:5]]
        assert found(OwnDocument.id, wanted) == set(wanted)
        assert found(OwnDocument.id, [2**31 - 1]) == set()

        # The literal is what PostgreSQL's array input reads back (on either database the
        # function is the same; only PostgreSQL is sent it).
        assert array_literal([1, 22, 333]) == "{1,22,333}"
        assert array_literal(['a,b', 'q"', 'b\\']) == '{"a,b","q\\"","b\\\\"}'
        assert array_literal([1, "mixed"]) is None
        assert array_literal([1.5]) is None


def test_on_postgresql_the_array_reaches_the_plan_as_a_constant(app) -> None:  # type: ignore[no-untyped-def]
    """The literal must arrive as the array itself, not as text cast by array_in row by row
    (a STABLE cast the planner leaves in the filter: a sequential scan then parses the whole
    array again for every row it reads)."""
    from store.db import among, db
    from store.models import OwnDocument

    with app.app_context():
        session = db.session
        statement = select(OwnDocument.id).where(among(session, OwnDocument.id, [3, 1, 2]))
        if session.get_bind().dialect.name != "postgresql":
            assert " IN (" in str(statement.compile(session.get_bind()))
            return
        compiled = statement.compile(session.get_bind())
        plan = "\n".join(row[0] for row in session.connection().exec_driver_sql(
            "EXPLAIN " + str(compiled), compiled.params))
        assert "'{3,1,2}'::integer[]" in plan, plan
        assert "cstring" not in plan and "character varying" not in plan, plan
