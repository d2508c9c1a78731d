"""The measure catalogue every action chooses from."""

from __future__ import annotations

from sqlalchemy import select

from coop.actions.models import Measure, MeasureCategory, MeasureUnit
from coop.extensions import db

# code, Dutch name, English name, unit, category, most a single home could need
CATALOGUE = [
    (
        "cavity_wall",
        "Spouwmuurisolatie",
        "Cavity wall insulation",
        MeasureUnit.SQUARE_METRE,
        MeasureCategory.INSULATION,
        1000,
    ),
    (
        "roof",
        "Dakisolatie",
        "Roof insulation",
        MeasureUnit.SQUARE_METRE,
        MeasureCategory.INSULATION,
        1000,
    ),
    (
        "floor",
        "Vloerisolatie",
        "Floor insulation",
        MeasureUnit.SQUARE_METRE,
        MeasureCategory.INSULATION,
        1000,
    ),
    (
        "glazing",
        "HR++-glas",
        "HR++ glazing",
        MeasureUnit.SQUARE_METRE,
        MeasureCategory.INSULATION,
        300,
    ),
    (
        "hybrid_heat_pump",
        "Hybride warmtepomp",
        "Hybrid heat pump",
        MeasureUnit.PIECE,
        MeasureCategory.HEAT_PUMP,
        2,
    ),
    (
        "full_heat_pump",
        "Volledige warmtepomp",
        "Full heat pump",
        MeasureUnit.PIECE,
        MeasureCategory.HEAT_PUMP,
        2,
    ),
]


def ensure_catalogue() -> dict[str, Measure]:
    """Insert missing catalogue entries; returns all measures by code. Safe to run repeatedly."""
    existing = {m.code: m for m in db.session.scalars(select(Measure))}
    for code, name_nl, name_en, unit, category, max_quantity in CATALOGUE:
        if code not in existing:
            measure = Measure(
                code=code,
                name_nl=name_nl,
                name_en=name_en,
                unit=unit,
                category=category,
                max_quantity=max_quantity,
            )
            db.session.add(measure)
            existing[code] = measure
    db.session.commit()
    return existing
