"""The staff's cross-cutting views; the installer's landing page until the portal exists."""
