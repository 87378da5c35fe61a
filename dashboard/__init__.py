"""Streamlit dashboard showing the board's live predictions over BLE (or the virtual board)."""
