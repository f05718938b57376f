"""Hot-path SELECTs compiled to SQL once per process and database, then rerun with new values.

The ORM builds and compiles a queryset on every call: ~0.5 ms CPU per statement, as much as
the round trip to PostgreSQL. A SELECT of a fixed shape whose one parameter needs no field
conversion (a token, a primary key) is compiled once here instead and executed on the cursor;
a row read as a model goes through the fields' converters and ``from_db`` as the ORM's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

PROBE = "\x01compiled-query-probe\x01"


class CompiledQuery:
    """``build(value)`` compiled once per database alias and thread, ``value`` bound per call.

    ``build`` is called with a probe value to find where the parameter goes, so the probe must
    pass through the field unchanged: use it for text and integer lookups only
    (``probe=-1`` for an integer key). ``exists=True`` compiles the queryset's ``exists()``.
    Row locks (``select_for_update``) are compiled inside ``atomic()``, where they are used.
    """

    def __init__(
        self, build: Callable[[Any], QuerySet], *, probe: Any = PROBE, exists: bool = False
    ) -> None:
        self._build = build
        self._probe = probe
        self._exists = exists

    def _sql(self, alias: str) -> _Compiled:
        # Kept on the connection (Django's are per alias and thread), whose operations the
        # fields' converters are bound to: it goes with its thread, so a server starting a
        # thread per request (runserver) keeps no compiled query for a thread that has ended.
        connection = connections[alias]
        compiled_here = vars(connection).setdefault("_payments_compiled_queries", {})
        compiled = compiled_here.get(self)
        if compiled is None:
            query = self._build(self._probe).query
            if self._exists:
                query = query.exists()
            compiler = query.get_compiler(alias)
            sql, params = compiler.as_sql()
            positions = [n for n, param in enumerate(params) if param == self._probe]
            if len(positions) != 1:
                raise ValueError(f"the probe must appear once among the parameters: {params!r}")
            compiled = _Compiled(sql, tuple(params), positions[0], compiler, alias)
            compiled_here[self] = compiled
        return compiled

    def first_row(self, value: Any, *, using: str = DEFAULT_DB_ALIAS) -> tuple[Any, ...] | None:
        """The first row the query returns for ``value`` (its columns as the cursor gives
        them: no field converters), or None."""
        compiled = self._sql(using)
        bound = list(compiled.params)
        bound[compiled.position] = value
        with connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, bound)
            return cursor.fetchone()

    def first_instance(self, value: Any, *, using: str = DEFAULT_DB_ALIAS) -> Model | None:
        """The first row as a model instance, as the queryset would give it, or None. For a
        queryset of a model's columns and its ``select_related`` ones (no ``only``,
        ``values`` or annotations)."""
        compiled = self._sql(using)
        if compiled.model is None:
            raise TypeError("not a queryset of one model's own columns")
        row = self.first_row(value, using=using)
        if row is None:
            return None
        connection = connections[using]
        values = list(row)
        for position, (converters, expression) in compiled.converters.items():
            for converter in converters:
                values[position] = converter(values[position], expression, connection)
        instance = compiled.model.from_db(using, compiled.attnames, values[: compiled.width])
        for populator in compiled.related_populators:
            populator.populate(values, instance)
        return instance


class _Compiled:
    """One query's SQL and parameters, where the bound value goes, and what reading a row
    as its model needs (the model, its columns' attribute names, the fields' converters)."""

    def __init__(
        self, sql: str, params: tuple[Any, ...], position: int, compiler, alias: str
    ) -> None:
        self.sql, self.params, self.position = sql, params, position
        self.model = self.attnames = None
        self.width = 0
        self.related_populators: list = []
        self.converters: dict[int, tuple[list, Any]] = {}
        klass_info = compiler.klass_info
        if klass_info is None or compiler.annotation_col_map:
            return
        columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
        own = klass_info["select_fields"]
        if own != list(range(len(own))) or compiler.query.deferred_loading != (frozenset(), True):
            return
        self.model = klass_info["model"]
        self.width = len(own)
        self.attnames = [column.target.attname for column in columns[: self.width]]
        self.related_populators = get_related_populators(klass_info, compiler.select, alias)
        self.converters = compiler.get_converters(columns)


class CompiledUpdate:
    """``UPDATE <table> SET <fields> WHERE <pk> = %s`` of a saved instance, its SQL built once.

    What ``instance.save(update_fields=fields)`` writes, each value prepared by its field as
    the ORM does, without the ORM's per-call building (~0.5 ms CPU). No ``pre_save`` hooks
    (auto_now fields are refused) and no model signals: for hot-path writes of plain columns.
    Returns the number of rows updated.
    """

    def __init__(self, model: type[Model], field_names: tuple[str, ...]) -> None:
        self._model = model
        self._fields = [model._meta.get_field(name) for name in field_names]
        for field in self._fields:
            if getattr(field, "auto_now", False) or not field.concrete or field.primary_key:
                raise ValueError(f"{field.name}: not a plain column")
        self._sql: dict[str, str] = {}

    def run(self, instance: Model, *, using: str = DEFAULT_DB_ALIAS) -> int:
        connection = connections[using]
        sql = self._sql.get(using)
        if sql is None:
            quote = connection.ops.quote_name
            columns = ", ".join(f"{quote(field.column)} = %s" for field in self._fields)
            meta = self._model._meta
            # Names quoted from the model's meta; every value is bound.
            sql = f"UPDATE {quote(meta.db_table)} SET {columns} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
            self._sql[using] = sql
        params = [
            field.get_db_prep_save(getattr(instance, field.attname), connection)
            for field in self._fields
        ]
        params.append(self._model._meta.pk.get_db_prep_value(instance.pk, connection))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
