"""Times as the runs library shows them: the user's local clock, with the day only when it is not today."""

from __future__ import annotations

from datetime import datetime, timedelta


def clock(moment: datetime, now: datetime | None = None) -> str:
    """'14:05', 'tomorrow 03:00' or 'Tue 24 Nov 03:00' (a naive time counts as local already)."""
    local = moment.astimezone()
    today = (now or datetime.now()).astimezone().date()
    if local.date() == today:
        return f"{local:%H:%M}"
    if local.date() == today + timedelta(days=1):
        return f"tomorrow {local:%H:%M}"
    return f"{local:%a %d %b %H:%M}"


def clock_iso(stamp: str) -> str:
    """The same for a stored ISO time (the registry writes UTC with a 'Z')."""
    try:
        return clock(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    except ValueError:
        return stamp[:16].replace("T", " ")
