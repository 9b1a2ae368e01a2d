"""The console areas' view models, at unit speed: a round's rule in Welsh and English
words, the eight-week calendar, the server-side SVG charts, the dry-run summary and
the CSV export's cells."""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from services.notify.console.campaigns.dryrun import fragments_warning, summarise
from services.notify.console.reports import charts
from services.notify.console.reports.queries import cell, day_bounds
from services.notify.console.rounds import weeks
from services.notify.console.rounds.words import describe, soft

TUESDAY = dt.date(2026, 12, 1)


@pytest.mark.parametrize(("rule", "en", "cy"), [
    ("FREQ=WEEKLY;BYDAY=TU", "every Tuesday", "bob dydd Mawrth"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "every other Tuesday", "bob yn ail ddydd Mawrth"),
    ("RRULE:FREQ=WEEKLY;INTERVAL=2", "every other Tuesday", "bob yn ail ddydd Mawrth"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "every other Monday", "bob yn ail ddydd Llun"),
    ("FREQ=WEEKLY;INTERVAL=3;BYDAY=FR", "every three weeks on Friday",
     "bob tair wythnos ar ddydd Gwener"),
    ("FREQ=WEEKLY;INTERVAL=4;BYDAY=WE", "every four weeks on Wednesday",
     "bob pedair wythnos ar ddydd Mercher"),
    ("FREQ=WEEKLY;BYDAY=MO,TH", "every Monday and Thursday", "bob dydd Llun a dydd Iau"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TH,MO", "every other week on Monday and Thursday",
     "bob yn ail wythnos ar ddydd Llun a dydd Iau"),
    ("FREQ=DAILY", "every day", "bob dydd"),
    ("FREQ=MONTHLY;BYDAY=1TU", "the first Tuesday of every month",
     "y dydd Mawrth cyntaf o bob mis"),
    ("FREQ=MONTHLY;BYDAY=2SA", "the second Saturday of every month",
     "yr ail ddydd Sadwrn o bob mis"),
    ("FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1", "the last Friday of every month",
     "y dydd Gwener olaf o bob mis"),
    ("FREQ=MONTHLY;BYMONTHDAY=15", "on day 15 of every month", "ar ddiwrnod 15 o bob mis"),
    ("FREQ=WEEKLY;BYDAY=TU;UNTIL=20270331", "every Tuesday, until 31 March 2027",
     "bob dydd Mawrth, tan 31 Mawrth 2027"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=10", "every other Tuesday (10 times)",
     "bob yn ail ddydd Mawrth (10 gwaith)"),
])
def test_a_rule_reads_as_words_in_both_languages(rule, en, cy):
    assert describe(rule, TUESDAY, "en") == en
    assert describe(rule, TUESDAY, "cy") == cy


def test_a_rule_it_does_not_understand_is_shown_as_the_rule_not_guessed():
    rule = "FREQ=YEARLY;BYWEEKNO=20"
    assert describe(rule, TUESDAY, "en") == f"by the rule {rule}"
    assert describe(rule, TUESDAY, "cy") == f"yn ôl y rheol {rule}"


def test_welsh_soft_mutation_of_the_words_day_names_need():
    assert [soft(w) for w in ("dydd", "pen", "llan", "mis", "gwaith", "afon")] == \
        ["ddydd", "ben", "lan", "fis", "waith", "afon"]


def fortnightly(first: dt.date, n: int, moved: dict | None = None) -> dict:
    moved = moved or {}
    upcoming = []
    for i in range(n):
        day = first + dt.timedelta(days=14 * i)
        target = moved.get(day, day)
        upcoming.append({"date": target.isoformat(),
                         "moved_from": day.isoformat() if target != day else None})
    return {"code": "A", "name": "Round A", "upcoming": upcoming}


def test_the_calendar_is_eight_weeks_from_this_monday_with_moves_shown():
    today = dt.date(2026, 12, 3)                       # a Thursday
    christmas = dt.date(2026, 12, 29)                  # moved to Thursday 31 December
    rounds = [fortnightly(dt.date(2026, 12, 1), 6, {christmas: dt.date(2026, 12, 31)})]
    cal = weeks.calendar(rounds, today)
    assert len(cal) == 8 and cal[0].monday == dt.date(2026, 11, 30)
    assert cal[-1].days[-1].date == weeks.last_day(today) == dt.date(2027, 1, 24)
    days = {d.date: d for w in cal for d in w.days}
    assert days[today].today and days[dt.date(2026, 12, 2)].past
    assert days[dt.date(2026, 12, 1)].collections == []      # gone: not shown
    assert [c.round for c in days[dt.date(2026, 12, 15)].collections] == ["A"]
    moved = days[dt.date(2026, 12, 31)].collections[0]
    assert moved.moved_from == christmas
    assert days[christmas].collections == []


def test_a_rounds_changes_list_moves_and_cancellations_in_date_order():
    r = {"moves": [{"from": "2026-12-25", "to": "2026-12-27"}],
         "exdates": ["2026-12-24"]}
    assert weeks.changes(r) == [{"from": dt.date(2026, 12, 24), "to": None},
                                {"from": dt.date(2026, 12, 25), "to": dt.date(2026, 12, 27)}]


def parse_svg(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def test_a_bar_chart_is_valid_svg_with_a_title_a_bar_per_value_and_no_inline_style():
    series = [charts.Series("delivered", "Delivered", charts.GREEN),
              charts.Series("failed", "Failed <b>", charts.RED)]
    svg = charts.bar_chart([("1 Dec", {"delivered": 90, "failed": 10}),
                            ("15 Dec", {"delivered": 45, "failed": 5})], series,
                           title="Results", desc="Delivered and failed", ident="c1")
    root = parse_svg(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img" and root.find(f"{ns}title").text == "Results"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) == 4
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == pytest.approx(2 * heights[2])      # 90 vs 45 on one axis
    assert "style=" not in str(svg) and "<b>" not in str(svg)   # labels escaped


def test_a_line_chart_leaves_a_gap_on_a_day_without_messages():
    svg = charts.line_chart([("1", 100.0), ("2", 50.0), ("3", None), ("4", 75.0)],
                            title="Delivery rate", desc="per day")
    root = parse_svg(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(list(root.iter(f"{ns}circle"))) == 3
    assert len(list(root.iter(f"{ns}polyline"))) == 1       # 1-2 joined; 4 stands alone


def test_an_axis_top_is_a_round_number_at_or_above_the_largest_value():
    assert [charts.nice_max(v) for v in (0, 7, 10, 11, 180, 2400)] == [1, 10, 10, 20, 200, 2500]


def template(en: str, cy: str):
    return SimpleNamespace(body_en=en, body_cy=cy, subject_en=None, subject_cy=None)


def test_the_dry_run_renders_each_sample_in_its_language_with_its_real_fragments():
    preview = {"recipients": 3, "languages": {"cy": 1, "en": 1, "unknown": 1},
               "segments": 4, "fragments_per_message": 1, "estimated_cost": 0.1,
               "price_per_fragment": 0.024,
               "capacity": {"fits": True, "starts_at": "2026-12-14T18:00:00+00:00"},
               "occurrences": [{"occurrence_key": "A:2026-12-15",
                                "scheduled_at": "2026-12-14T18:00:00Z", "due_at": None}],
               "sample": [
                   {"recipient": "+447700900001", "language": "cy",
                    "personalisation": {"day": "dydd Mawrth"}, "not_before": None},
                   {"recipient": "+447700900002", "language": "en",
                    "personalisation": {"day": "Tuesday"}, "not_before": None},
                   {"recipient": "+447700900003",
                    "language": "cy+en (unknown: both, Welsh first)",
                    "personalisation": {}, "not_before": None}]}
    run = summarise(preview, template("Bins go out ((day))", "Biniau allan ((day)) — ŵyn"),
                    "sms")
    assert run.languages == {"cy": 1, "en": 1, "cy+en": 1} and run.fits is True
    cy, en, both = run.sample
    assert cy.text.startswith("Biniau allan dydd Mawrth") and cy.encoding == "UCS-2"
    assert en.text == "Bins go out Tuesday" and en.encoding == "GSM-7" and en.fragments == 1
    assert both.language == "cy+en" and both.problem == ["day"]
    assert run.occurrences[0]["scheduled_at"] == dt.datetime(2026, 12, 14, 18, tzinfo=dt.UTC)
    assert not fragments_warning(run)


def test_the_dry_run_warns_when_a_message_needs_more_fragments_than_it_was_costed_at():
    long_welsh = "ŵ" * 100                                 # UCS-2: two fragments
    preview = {"recipients": 1, "languages": {"cy": 1}, "fragments_per_message": 1,
               "sample": [{"recipient": "+447700900001", "language": "cy",
                           "personalisation": {}}]}
    run = summarise(preview, template("short", long_welsh), "sms")
    assert run.sample[0].fragments == 2 and fragments_warning(run)
    assert run.fits is None                                   # no capacity figures: unknown


def test_csv_cells_cannot_run_as_spreadsheet_formulas_but_numbers_stay_numbers():
    assert cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert cell("@SUM(A1)") == "'@SUM(A1)"
    assert cell("-cmd") == "'-cmd"
    assert cell("+447700900123") == "+447700900123"
    assert cell(None) == ""
    assert cell(dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)) == "2026-12-03T10:00:00Z"


def test_a_report_day_is_a_london_day_across_the_clock_change():
    lo, hi = day_bounds(dt.date(2026, 3, 29), dt.date(2026, 3, 29))    # BST starts
    assert lo == dt.datetime(2026, 3, 29, 0, tzinfo=dt.UTC)
    assert hi == dt.datetime(2026, 3, 29, 23, tzinfo=dt.UTC)             # a 23-hour day
