"""The installer registry (desk side) and, later, the installer's portal."""
