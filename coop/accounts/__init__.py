"""Users, organisations and roles; magic-link login for residents, passwords for staff."""
