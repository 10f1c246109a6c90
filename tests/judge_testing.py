"""A scripted judge's replies for the judge backends' wire tests (the servers answer with them)."""

import re


def judge_says(user: str) -> str:
    """A judge that prefers the answer containing GOOD, and writes garbage for a GARBAGE question."""
    if "GARBAGE" in user:
        return "Both answers have merit. I lean towards A, probably. [[A]]"
    a = re.search(r"Assistant A's answer\]\n(.*?)\n\[The end of Assistant A", user, re.S)
    b = re.search(r"Assistant B's answer\]\n(.*?)\n\[The end of Assistant B", user, re.S)
    assert a and b, user
    if "GOOD" in a.group(1):
        return "A is correct and B is not.\nVERDICT: A"
    if "GOOD" in b.group(1):
        return "B is correct and A is not.\nVERDICT: B"
    return "They are equally good.\nVERDICT: TIE"
