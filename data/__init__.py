"""Package data only: installed as ``gesture_data`` (see pyproject.toml and capture.resources)."""
