"""Package data only: installed as ``gesture_firmware`` (see pyproject.toml and capture.resources)."""
