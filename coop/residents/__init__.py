"""What a resident does across the domains: their own pages, withdrawing measures, exporting and
erasing their data. Above registrations, orders, payments and participation (README, "How it is
built")."""
