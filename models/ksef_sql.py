"""Set-based writes for thousands of records at once (KSeF verdicts land on a whole batch
session): one ``UPDATE … FROM (VALUES …)`` per chunk instead of one ORM write per record."""
from odoo.tools import SQL


def sql_update(model, rows, chunk=1000):
    """Set-based UPDATE of plain stored columns: ``rows`` maps record id -> {field: value}.
    Rows are grouped by their set of fields; the cache is invalidated and dependants marked."""
    groups = {}
    for record_id, values in rows.items():
        groups.setdefault(tuple(sorted(values)), []).append(record_id)
    for names, ids in groups.items():
        columns = []
        for name in names:
            field = model._fields[name]
            value_type = field.column_type[1] if field.type != "many2one" else "int4"
            columns.append((name, value_type))
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            values = SQL(", ").join(
                SQL("(%s, %s)", record_id, SQL(", ").join(
                    SQL("%s::" + value_type, _db_value(model._fields[name], rows[record_id][name]))
                    for name, value_type in columns))
                for record_id in part)
            model.env.cr.execute(SQL(
                "UPDATE %s AS t SET %s FROM (VALUES %s) AS v(%s) WHERE t.id = v.id",
                SQL.identifier(model._table),
                SQL(", ").join(SQL("%s = v.%s", SQL.identifier(name), SQL.identifier(name)) for name, _type in columns),
                values,
                SQL(", ").join(SQL.identifier(n) for n in ["id"] + [name for name, _type in columns]),
            ))
        records = model.browse(ids)
        records.invalidate_recordset(list(names))
        records.modified(list(names))


def _db_value(field, value):
    if value is False or value is None:
        return None
    if field.type == "many2one":
        return value.id if hasattr(value, "id") else value
    return value
