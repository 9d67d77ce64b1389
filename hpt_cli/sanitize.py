"""Text from trials (errors, parameter strings) made safe to show: no terminal escape codes in
plain log lines, nothing XML 1.0 forbids in JUnit files.

A trial's error is whatever its code printed or raised, and training code often colours its
output (loguru, rich, tqdm): `\\x1b[31m...`.
"""

from __future__ import annotations

import re

# ANSI escape sequences: CSI (ESC [ ... final byte, or the 8-bit CSI byte), OSC (ESC ] ... up to
# BEL or ESC \), ESC + intermediate bytes + final byte (ESC ( B), and ESC + one byte (ESC 7, ESC M).
ANSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]+[0-~]|\x1b[0-~]")
# C0 and C1 control characters other than tab and newline (a lone ESC left over, BEL, CR...),
# and lone surrogates (which no encoder writes)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# what XML 1.0 does not allow in a document (https://www.w3.org/TR/xml/#charsets)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
REPLACEMENT = "\ufffd"


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences."""
    return ANSI.sub("", text)


def plain(text: str) -> str:
    """For a log line without a terminal: no escape sequences; any other control character
    (tab and newline aside) becomes U+FFFD, so nothing the terminal would act on is left."""
    return _CONTROL.sub(REPLACEMENT, strip_ansi(text))


def xml_safe(text: str) -> str:
    """For XML 1.0 attributes and text: no escape sequences; every character XML 1.0 forbids
    (C0 controls but tab, CR and LF; lone surrogates; U+FFFE, U+FFFF) becomes U+FFFD."""
    return _NOT_XML.sub(REPLACEMENT, strip_ansi(text))
