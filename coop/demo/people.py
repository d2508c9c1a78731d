"""The demo's people, streets and installers (invented; any likeness is chance)."""

from __future__ import annotations

DEMO_PASSWORD = "demo-coop-2026"  # noqa: S105 - printed on purpose; demo data only

# Streets that exist in these neighbourhoods, with their postcode area (PC4) and letters.
STREETS = {
    "Lunetten": [
        ("Hondsrug", "3524", "BA"),
        ("Drentsche Aa", "3524", "BE"),
        ("Zevenwouden", "3524", "CR"),
        ("Vaartsche Rijn", "3523", "EA"),
        ("Ravellijn", "3523", "HM"),
        ("Waterlinieweg", "3524", "ZA"),
        ("Kreekrug", "3524", "CK"),
        ("Balijelaan", "3521", "GK"),
    ],
    "Zuilen": [
        ("Amsterdamsestraatweg", "3553", "EB"),
        ("Prinses Christinalaan", "3554", "HA"),
        ("Marnixlaan", "3552", "HB"),
        ("Kanaalweg", "3552", "TA"),
        ("Ondiep-Zuidzijde", "3551", "BW"),
        ("Johannes Lodewijkstraat", "3553", "TG"),
        ("Queekhovenplein", "3554", "VK"),
    ],
}
FIRST = [
    "Anna",
    "Bram",
    "Chantal",
    "Daan",
    "Emma",
    "Fatima",
    "Gert",
    "Hanneke",
    "Ibrahim",
    "Joost",
    "Karin",
    "Lars",
    "Mila",
    "Noah",
    "Olga",
    "Pieter",
    "Richard",
    "Sanne",
    "Tim",
    "Yasmina",
]
LAST = [
    "de Vries",
    "Jansen",
    "van den Berg",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "El Amrani",
    "Yilmaz",
    "Dekker",
]
INSTALLERS = [
    (
        "Isolatiebedrijf Domstad B.V.",
        "30123456",
        "Utrecht",
        "3500-3599",
        {"cavity_wall": (2200, 30), "roof": (4500, 15), "floor": (3100, 20)},
    ),
    (
        "Groen Dak & Gevel",
        "30234567",
        "Nieuwegein",
        "3430-3439,3500-3599",
        {"roof": (4200, 12), "glazing": (19500, 10)},
    ),
    (
        "Spouwspecialist Midden",
        "30345678",
        "Houten",
        "3990-3999,3520-3529",
        {"cavity_wall": (2000, 40), "floor": (2900, 25)},
    ),
    (
        "WarmteWerk Utrecht",
        "30456789",
        "Utrecht",
        "3500-3599",
        {"hybrid_heat_pump": (425000, 8), "full_heat_pump": (1150000, 3)},
    ),
    (
        "Klimaatinstallaties De Bilt",
        "30567890",
        "De Bilt",
        "3730-3739,3550-3559",
        {"hybrid_heat_pump": (439000, 6), "full_heat_pump": (1095000, 4)},
    ),
    (
        "Van Dijk Glas en Isolatie",
        "30678901",
        "Zeist",
        "3700-3709,3500-3599",
        {"glazing": (18500, 12), "roof": (4700, 10), "cavity_wall": (2300, 20)},
    ),
]
