"""The reliability page counts what the corpus, HTTP and team-server tests reported."""

from __future__ import annotations

from experiments.reliability.run import JunitCase, parse_junit, summarise

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.corpus.test_daily_counts" name="test_bad[counts-a]"/>
<testcase classname="tests.corpus.test_daily_counts" name="test_bad[counts-b]">
  <failure message="AssertionError: [silent] counts-b (forecast): accepted">trace</failure></testcase>
<testcase classname="tests.corpus.test_overrides" name="test_bad[over-c]">
  <failure message="AssertionError: [traceback][half-written] over-c: ValueError">trace</failure></testcase>
<testcase classname="tests.corpus.test_overrides" name="test_bad[over-d]">
  <failure message="AssertionError: [unclear] over-d (project): lacks /key/">trace</failure></testcase>
<testcase classname="tests.serving.test_malformed_requests" name="test_malformed[f-a]"/>
<testcase classname="tests.serving.test_malformed_requests" name="test_malformed[f-b]">
  <failure message="AssertionError: (500, 'Internal Server Error')">trace</failure></testcase>
<testcase classname="tests.serving.test_malformed_requests" name="test_malformed[f-c]">
  <failure message="AssertionError: 'ZZQ' echoed in {...}">trace</failure></testcase>
<testcase classname="tests.serving.test_malformed_requests" name="test_enough_distinct_malformed_requests"/>
<testcase classname="tests.serving.test_team_server" name="test_another_user_cannot_write">
  <skipped message="PostgreSQL binaries absent">skip</skipped></testcase>
</testsuite></testsuites>
"""


def test_outcomes_are_counted_by_category(tmp_path):
    path = tmp_path / "all.xml"
    path.write_text(JUNIT)
    results = parse_junit(path, "corpus")
    for result in results:  # one file here; the script runs one junit file per suite
        object.__setattr__(result, "suite", _suite(result.file))
    report = summarise(results, {"corpus": 1.0})
    m = report.metrics
    assert (m["corpus_cases"], m["corpus_clear_pct"]) == (4, 25.0)
    assert (m["corpus_silent"], m["corpus_tracebacks"], m["corpus_half_written"], m["corpus_unclear"]) == (
        1,
        1,
        1,
        1,
    )
    assert (m["http_requests"], m["http_500"], m["http_echo"], m["http_refused_cleanly"]) == (3, 1, 1, 1)
    assert m["team_server_tests_run"] == 0
    assert (
        "| bad-input corpus: clear one-line errors | 100 % | 25.0 % of 4 cases | **not met** |"
        in report.markdown
    )
    assert "over-c" in report.markdown and "not measured: the tests were skipped" in report.markdown


def _suite(file: str) -> str:
    if file.startswith("test_malformed"):
        return "http"
    return "team_server" if file == "test_team_server" else "corpus"


def test_team_server_setup_errors_are_not_counted_as_allowed_writes():
    results = [
        JunitCase(
            "team_server", "test_team_server", "test_another_user_cannot_write", "error", "setup failed"
        ),
        JunitCase(
            "team_server", "test_team_server", "test_unknown_users_cannot_write", "failed", "200 != 403"
        ),
    ]
    report = summarise(results, {})
    assert report.metrics["team_server_cross_user_failures"] == 1
    assert report.metrics["team_server_cross_user_unmeasured"] == 1
    assert (
        "1 of 2 cross-user test(s) failing, 1 not measured (error in setup) | **not met**" in report.markdown
    )
