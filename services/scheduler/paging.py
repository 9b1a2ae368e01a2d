"""Pages of a tenant's rows, newest first, as GOV.UK Notify lists them (``older_than``)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import request, url_for

PAGE_SIZE = 250


def page(session, query: sa.Select, model, args: dict, size: int) -> list:
    """Newest first, ``size`` a page, continuing after ``older_than`` (an id of this tenant's)."""
    if args.get("older_than"):
        anchor = session.scalars(query.where(model.id == str(args["older_than"]))).first()
        if anchor is None:
            return []
        query = query.where(sa.or_(model.created_at < anchor.created_at, sa.and_(
            model.created_at == anchor.created_at, model.id < anchor.id)))
    return list(session.scalars(query.order_by(model.created_at.desc(), model.id.desc())
                                .limit(size)))


def links(endpoint: str, rows: list, size: int) -> dict:
    """``current`` and, when the page is full, ``next`` (carrying ``older_than``)."""
    out = {"current": request.url}
    if len(rows) == size:
        params = {k: v for k, v in request.args.items() if k != "older_than"}
        out["next"] = url_for(endpoint, _external=True, older_than=rows[-1].id, **params)
    return out
