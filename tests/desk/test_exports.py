"""Exports of registrations and installers: CSV as Dutch Excel opens it and XLSX, read back and
checked for rows, filters, the organisation's scope and the formula-injection guard."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from coop.actions.catalogue import ensure_catalogue
from coop.core import exports
from coop.core.audit import AuditEntry
from coop.core.time import utcnow
from coop.extensions import db
from coop.installers.models import Installer, InstallerOffer
from coop.registrations.models import Ownership, RegistrationStatus
from tests import factories
from tests.registrations.test_desk_list import add_registration, login

# --- the writers on their own ----------------------------------------------------------------


def test_the_guard_neutralises_formulas_and_leaves_the_rest() -> None:
    for dangerous in (
        "=1+1",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "\t+31 6 1234 5678",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "+31 6 1234 5678 =A1",
        "+A1",
        "-SUM(A1:A2)",
        "+31+6",
        "+",
        "-",
        "+ - ( )",
    ):
        assert exports.guard(dangerous) == "'" + dangerous, dangerous
    for harmless in ("Anna", "3524 BA", "", "a=b", 5, -5, None):
        assert exports.guard(harmless) == harmless


@pytest.mark.parametrize(
    "phone", ["+31 6 1234 5678", "+31 (0)30 286 00 00", "-06-12345678", "+31-6-12345678", "-2"]
)
def test_phone_numbers_stay_as_typed_in_csv_and_xlsx(phone: str) -> None:
    assert exports.guard(phone) == phone
    table = exports.Table(title="t", headers=["Telefoon"], rows=[[phone], ["=1+1"]])
    data = b"".join(exports.csv_chunks(table)).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(data), delimiter=";"))
    assert parsed[1:] == [[phone], ["'=1+1"]]
    buffer = io.BytesIO()
    exports.write_xlsx(
        exports.Table(title="t", headers=["Telefoon"], rows=[[phone], ["=1+1"]]), buffer
    )
    sheet = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert sheet is not None
    assert [sheet.cell(row=r, column=1).value for r in (2, 3)] == [phone, "'=1+1"]
    assert sheet.cell(row=2, column=1).data_type == "s"


def test_csv_has_bom_semicolons_and_comes_in_chunks() -> None:
    rows = [[n, f"naam {n}", "=cmd|' /C calc'!A0", None] for n in range(1200)]
    table = exports.Table(
        title="t", headers=["Nr", "Naam; met puntkomma", "Gevaar", "Leeg"], rows=rows
    )
    chunks = list(exports.csv_chunks(table))
    assert len(chunks) == 3  # 500 rows a chunk: the file is streamed, not built whole
    data = b"".join(chunks)
    assert data.startswith("\ufeff".encode())
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert parsed[0] == ["Nr", "Naam; met puntkomma", "Gevaar", "Leeg"]
    assert len(parsed) == 1201
    assert parsed[1] == ["0", "naam 0", "'=cmd|' /C calc'!A0", ""]


def test_xlsx_keeps_types_and_holds_no_formulas() -> None:
    when = utcnow().replace(microsecond=0)
    table = exports.Table(
        title="Registraties [test]: a/b",
        headers=["Nr", "Naam", "Datum"],
        rows=iter([[1, '=HYPERLINK("http://evil")', when], [2, "bel\x07l", None]]),
    )
    buffer = io.BytesIO()
    exports.write_xlsx(table, buffer)
    sheet = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert sheet is not None
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[0] == ("Nr", "Naam", "Datum")
    assert cells[1][0] == 1
    assert cells[1][1] == '\'=HYPERLINK("http://evil")'
    assert sheet.cell(row=2, column=2).data_type == "s"  # text, not a formula
    # Shown in Amsterdam time, without a zone (Excel has none).
    assert cells[1][2] == exports._local(when)
    assert cells[2][1] == "bell"  # a control character XLSX cannot hold is dropped


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def desks(app: Flask) -> dict[str, Any]:
    with app.app_context():
        org_a = factories.organisation("Energieloket Utrecht")
        org_b = factories.organisation("Energiecoöperatie Zeist")
        roofs = factories.action(org_a, slug="samen-isoleren")
        zeist = factories.action(org_b, slug="zeist-isoleert", pc4s="3701")
        factories.staff(org_a, "staff-a@example.nl")
        factories.staff(org_b, "staff-b@example.nl")
        start = utcnow() - timedelta(days=3)
        add_registration(
            roofs,
            name="Anna de Vries",
            email="anna@example.nl",
            number=12,
            phone="+31 6 12345678",
            created_at=start,
        )
        # Written directly, as if a bug or an import had let it in: the export must still be safe.
        add_registration(
            roofs,
            name='=HYPERLINK("http://evil.example","klik")',
            email="evil@example.nl",
            number=13,
            street="@SUM(1+1)",
            city="-Utrecht",
            status=RegistrationStatus.PENDING_CONFIRMATION,
            ownership=Ownership.PRIVATE_TENANT,
            measures=(0, 1),
            created_at=start + timedelta(hours=1),
        )
        add_registration(
            roofs,
            name="Cees Jansen",
            email="cees@example.nl",
            number=14,
            status=RegistrationStatus.WITHDRAWN,
            created_at=start + timedelta(hours=2),
        )
        add_registration(zeist, name="Zoë Zeist", email="zoe@example.nl", postcode="3701 AA")
        measures = ensure_catalogue()
        installer_a = Installer(
            organisation_id=org_a.id,
            company_name="=cmd|' /C calc'!A0",
            kvk_number="12345678",
            contact_name="Peter",
            email="info@isolatie.example",
            city="Utrecht",
            service_area="3500-3599,3811",
            certifications="VCA,InstallQ",
        )
        installer_a.offers = [
            InstallerOffer(measure_id=measures["roof"].id, unit_price_cents=4550, homes_per_week=12)
        ]
        installer_b = Installer(
            organisation_id=org_b.id,
            company_name="Warmte Zeist BV",
            kvk_number="87654321",
            email="info@zeist.example",
            city="Zeist",
            service_area="3700-3709",
        )
        db.session.add_all([installer_a, installer_b])
        db.session.commit()
        return {"roof": measures["roof"].id}


def read_csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response.headers["Content-Disposition"]
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM, for Excel
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def read_xlsx(response: Any) -> list[tuple[Any, ...]]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == exports.XLSX_MIMETYPE
    workbook = load_workbook(io.BytesIO(response.get_data()))
    sheet = workbook.active
    assert sheet is not None
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.value  # no formula anywhere
    return list(sheet.iter_rows(values_only=True))


def test_registrations_csv_with_the_lists_filters(
    app: Flask, client: FlaskClient, desks: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    rows = read_csv(client.get("/desk/registrations/export.csv?sort=created&direction=asc"))
    header, body = rows[0], rows[1:]
    assert header[:5] == ["Number", "Registered at", "Action", "Status", "Name"]
    by_name = {row[4]: dict(zip(header, row, strict=True)) for row in body}
    # Desk A's three registrations, oldest first; nothing of desk B.
    assert [row[4] for row in body] == [
        "Anna de Vries",
        '\'=HYPERLINK("http://evil.example","klik")',
        "Cees Jansen",
    ]
    assert "Zoë" not in str(rows)
    anna = by_name["Anna de Vries"]
    assert anna["Postcode"] == "3524 BA" and anna["House number"] == "12"
    assert anna["Phone number"] == "+31 6 12345678"  # as typed: a phone number is no formula
    assert anna["Status"] == "Confirmed" and anna["Action"] == "Insulating together"
    assert anna["Measures"] == "Roof insulation: 10 m²"
    evil = by_name['\'=HYPERLINK("http://evil.example","klik")']
    assert evil["Street"] == "'@SUM(1+1)" and evil["Town or city"] == "'-Utrecht"
    assert evil["Ownership"] == "Tenant, private landlord"

    filtered = read_csv(client.get("/desk/registrations/export.csv?status=withdrawn"))
    assert [row[4] for row in filtered[1:]] == ["Cees Jansen"]
    searched = read_csv(client.get("/desk/registrations/export.csv?q=anna&ownership=owner"))
    assert [row[4] for row in searched[1:]] == ["Anna de Vries"]
    with app.app_context():
        entries = list(
            db.session.scalars(
                select(AuditEntry)
                .where(AuditEntry.verb == "registration.export")
                .order_by(AuditEntry.id)
            )
        )
        assert [e.after for e in entries] == [
            {"format": "csv", "filters": {}},
            {"format": "csv", "filters": {"status": "withdrawn"}},
            {"format": "csv", "filters": {"q": "anna", "ownership": "owner"}},
        ]


def test_registrations_xlsx_with_the_lists_filters(
    client: FlaskClient, desks: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    rows = read_xlsx(client.get("/desk/registrations/export.xlsx?sort=name&direction=asc"))
    header = rows[0]
    names = [row[4] for row in rows[1:]]
    assert names == ['\'=HYPERLINK("http://evil.example","klik")', "Anna de Vries", "Cees Jansen"]
    anna = dict(zip(header, rows[2], strict=True))
    assert anna["House number"] == 12  # numbers stay numbers
    assert anna["Phone number"] == "+31 6 12345678"  # as typed, no apostrophe
    assert anna["Registered at"].tzinfo is None  # a date Excel can sort
    pending = read_xlsx(client.get("/desk/registrations/export.xlsx?status=pending_confirmation"))
    assert len(pending) == 2 and pending[1][5] == "evil@example.nl"


def test_another_desk_exports_only_its_own(client: FlaskClient, desks: dict[str, Any]) -> None:
    login(client, "staff-b@example.nl")
    rows = read_csv(client.get("/desk/registrations/export.csv"))
    assert [row[4] for row in rows[1:]] == ["Zoë Zeist"]
    xlsx = read_xlsx(client.get("/desk/registrations/export.xlsx"))
    assert [row[4] for row in xlsx[1:]] == ["Zoë Zeist"]
    installers = read_csv(client.get("/desk/installers/export.csv"))
    assert [row[0] for row in installers[1:]] == ["Warmte Zeist BV"]
    assert client.get("/desk/registrations/export.pdf").status_code == 404


def test_installers_export_in_both_formats(
    app: Flask, client: FlaskClient, desks: dict[str, Any]
) -> None:
    login(client, "staff-a@example.nl")
    rows = read_csv(client.get("/desk/installers/export.csv"))
    header, body = rows[0], rows[1:]
    assert len(body) == 1
    record = dict(zip(header, body[0], strict=True))
    assert record["Company name"] == "'=cmd|' /C calc'!A0"
    assert record["KvK number"] == "12345678"
    assert record["Service area"] == "3500-3599, 3811"
    assert record["Roof insulation: price per unit (€)"] == "45,50"
    assert record["Roof insulation: homes per week"] == "12"
    assert record["Hybrid heat pump: price per unit (€)"] == ""

    sheet = read_xlsx(client.get("/desk/installers/export.xlsx"))
    xrecord = dict(zip(sheet[0], sheet[1], strict=True))
    assert xrecord["Company name"] == "'=cmd|' /C calc'!A0"
    assert xrecord["Roof insulation: price per unit (€)"] == 45.5
    assert xrecord["Roof insulation: homes per week"] == 12
    with app.app_context():
        verbs = list(
            db.session.scalars(
                select(AuditEntry.after).where(AuditEntry.verb == "installer.export")
            )
        )
        assert verbs == [{"format": "csv"}, {"format": "xlsx"}]


def test_exports_are_for_staff_only(app: Flask, desks: dict[str, Any]) -> None:
    anonymous = app.test_client()
    for url in ("/desk/registrations/export.csv", "/desk/installers/export.xlsx"):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
