"""Flatfile's glob rules for topics and job names, and the ZeroMQ prefixes that receive them.

``:`` separates segments, ``*`` matches within one segment, ``**`` across any number (``a:**`` also
matches ``a``), ``?`` one character, ``\\`` escapes the next character.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

HEARTBEAT_TOPIC = "broker:heartbeat"


def glob_match(pattern: str, value: str, separator: str = ":") -> bool:
    """Whether ``value`` matches the glob ``pattern``."""
    return _glob_regex(pattern, separator).fullmatch(value) is not None


@functools.lru_cache(maxsize=1024)
def _glob_regex(pattern: str, separator: str) -> "re.Pattern[str]":
    sep = re.escape(separator)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith(separator + "**", i) and (i + 3 == len(pattern) or pattern[i + 3] == separator):
            out.append(f"(?:{sep}.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(f"[^{sep}]*")
            i += 1
        elif pattern[i] == "?":
            out.append(f"[^{sep}]")
            i += 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def literal_prefix(pattern: str) -> tuple[str, bool]:
    """The part of a glob before its first wildcard, and whether the whole pattern is literal."""
    match = re.search(r"[*?\\]", pattern)
    return (pattern, True) if match is None else (pattern[: match.start()], False)


def subscription_prefix(topic: str, job: Optional[str] = None) -> str:
    """The ZeroMQ prefix that receives every event that ``topic`` (a glob) and ``job`` (a glob) can match.

    ``("job:ready", "workbook:export")`` gives ``job:ready/workbook:export/``; ``("job:*",)`` gives
    ``job:``; patterns that are not prefixes subscribe wider and are filtered in the client.
    """
    topic_prefix, topic_literal = literal_prefix(topic)
    if not topic_literal:
        return topic_prefix
    if job is None:
        return topic + "/"
    job_prefix, job_literal = literal_prefix(job)
    return f"{topic}/{job_prefix}" + ("/" if job_literal else "")


def minimal_prefixes(prefixes: list[str]) -> list[str]:
    """The prefixes that no other one of the list already covers, sorted."""
    unique = sorted(set(prefixes))
    return [p for p in unique if not any(q != p and p.startswith(q) for q in unique)]


def split_topic_frame(frame: bytes) -> tuple[str, str]:
    """``b"job:ready/workbook:export/"`` -> ``("job:ready", "workbook:export")``."""
    topic, _, rest = frame.decode("utf-8").partition("/")
    return topic, rest[:-1] if rest.endswith("/") else rest
