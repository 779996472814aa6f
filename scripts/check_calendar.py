#!/usr/bin/env python3
"""Check schema/calendars/*.json against the PyPI package `chinese-calendar`.

Every day of every year that has a file is classified as working / not working
by our data (weekend and not a listed holiday, or listed as an adjusted
working day) and by chinese_calendar.is_workday(). Any difference is printed
and the script exits 1, so a typo in a year file cannot ship silently.

The package is an independent transcription of the same State Council notices,
not an authority: when the two disagree, read the notice, and fix whichever is
wrong (and say so in the commit message).

Usage: python3 scripts/check_calendar.py [--dir schema/calendars] [--strict]
  --strict  also fail when a year cannot be checked because the installed
            chinese_calendar does not cover it yet (e.g. a freshly added year).
Needs: pip install chinese-calendar
"""

import argparse
import datetime as dt
import json
import pathlib
import sys

try:
    import chinese_calendar
except ImportError:
    sys.exit("check_calendar: missing dependency, run: pip install chinese-calendar")

REPO = pathlib.Path(__file__).resolve().parent.parent
WEEKDAYS = "一二三四五六日"


def describe(day):
    return f"{day.isoformat()}（周{WEEKDAYS[day.weekday()]}）"


def load(path):
    """Return (year, {date: reason_off}, {date: reason_on}, problems)."""
    problems = []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, {}, {}, [f"{path.name}: cannot read: {err}"]
    year = data.get("year")
    if not isinstance(year, int):
        return None, {}, {}, [f"{path.name}: missing or non-integer \"year\""]
    if path.stem != str(year):
        problems.append(f"{path.name}: file name does not match \"year\": {year}")
    sets = {}
    for key in ("holidays", "workdays"):
        found = {}
        for period in data.get(key, []):
            for text in period.get("days", []):
                try:
                    day = dt.date.fromisoformat(text)
                except (TypeError, ValueError):
                    problems.append(f"{path.name}: {key} {period.get('name')!r}: bad date {text!r}")
                    continue
                if day.year != year:
                    problems.append(f"{path.name}: {key} {period.get('name')!r}: {text} is outside {year}")
                found[day] = period.get("name", "?")
        sets[key] = found
    return year, sets["holidays"], sets["workdays"], problems


def ours_is_workday(day, holidays, workdays):
    if day in workdays:
        return True, f"调休上班（{workdays[day]}）"
    if day in holidays:
        return False, f"放假（{holidays[day]}）"
    if day.weekday() >= 5:
        return False, "周末"
    return True, "平日"


def theirs(day):
    working = chinese_calendar.is_workday(day)
    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    detail = "上班" if working else "休息"
    if name:
        detail += f"（{name}）"
    return working, detail


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=pathlib.Path, default=REPO / "schema" / "calendars")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()

    files = sorted(args.dir.glob("*.json"))
    if not files:
        print(f"check_calendar: no *.json in {args.dir}")
        return 1
    version = getattr(chinese_calendar, "__version__", "?")
    mismatches, problems, unverified, checked_days, years = 0, [], [], 0, []
    for path in files:
        year, holidays, workdays, file_problems = load(path)
        problems.extend(file_problems)
        if year is None:
            continue
        years.append(year)
        day = dt.date(year, 1, 1)
        while day.year == year:
            mine, why = ours_is_workday(day, holidays, workdays)
            try:
                other, other_why = theirs(day)
            except NotImplementedError:
                # The package raises for years it does not know yet.
                unverified.append(year)
                break
            checked_days += 1
            if mine != other:
                mismatches += 1
                print(f"MISMATCH {path.name} {describe(day)}: ours {'上班' if mine else '休息'} {why}; "
                      f"chinese_calendar {other_why}")
            day += dt.timedelta(days=1)
    for problem in problems:
        print(f"PROBLEM {problem}")
    for year in unverified:
        print(f"UNVERIFIED {year}: chinese_calendar {version} does not cover it")
    failed = mismatches > 0 or problems or (args.strict and unverified)
    print(f"check_calendar: {'FAIL' if failed else 'OK'}: {len(files)} files "
          f"({', '.join(map(str, years))}), {checked_days} days compared with chinese_calendar {version}, "
          f"{mismatches} mismatches, {len(problems)} file problems, {len(unverified)} unverified years")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
