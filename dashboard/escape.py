"""Showing untrusted text on the page: device INFO, BLE names, link targets, error reasons.

Streamlit's st.success/st.error/st.warning/st.caption/st.markdown render Markdown, so a string a
nearby BLE device chose could otherwise put a link or a remote image on the page. Text from
outside goes through :func:`md_escape` there, or is shown with ``st.text`` (plain text).
"""
from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>!|#~$])")  # emphasis, code, links/images, HTML, tables, math


def md_escape(text: object) -> str:
    """``text`` as literal Markdown: st.success/st.error/st.caption render Markdown, and device
    strings, link targets and error reasons must never become links, images or markup there.
    Brackets and ``<``/``!`` are escaped, and so is the ``:`` of ``://`` and the ``.`` of ``www.``,
    which would otherwise become bare autolinks."""
    out = _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")
    return re.sub(r"(?i)www\.", "www\\.", out.replace("://", "\\://"))
