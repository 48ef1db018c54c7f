"""E-mail addresses, masked down to the local part's first character and the domain."""

from __future__ import annotations

import re

from tools.pii.found import Found

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def mask_emails(text: str, found: Found) -> str:
    """Each e-mail address, kept to the first character of its local part and its domain."""

    def repl(m: re.Match[str]) -> str:
        local, _, domain = m.group(0).partition("@")
        return found.add("email", local[:1] + "***@" + domain)

    return _EMAIL.sub(repl, text) if "@" in text else text
