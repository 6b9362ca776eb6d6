"""A regression comparison as JUnit XML, so CI systems show each task as a test case.

Layout (the common JUnit schema that Jenkins, GitLab and GitHub reporters read)::

    <testsuites name="r1eval regress" tests failures errors skipped>
      <testsuite name="<candidate> vs <base>" tests failures errors skipped time>
        <properties><property name="base" value="..."/>...</properties>
        <testcase classname="r1eval.regress" name="<task>" time="0">
          <failure type="regression" message="...">...</failure>   when the gate fails
          <skipped message="..."/>                                  when not compared
          <system-out>the task's summary</system-out>
        </testcase>
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from r1eval.percent import percent_text
from r1eval.regress.paired import Comparison, TaskComparison
from r1eval.regress.render import gate_text, summary

__all__ = ["junit_tree", "write_junit"]


def _counts(element: ET.Element, tests: int, failures: int, skipped: int) -> None:
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", "0")
    element.set("skipped", str(skipped))


def _task_case(suite: ET.Element, comparison: Comparison, t: TaskComparison) -> None:
    case = ET.SubElement(suite, "testcase", classname="r1eval.regress", name=t.task, time="0")
    text = summary(t, comparison.settings)
    if comparison.forced:
        text += f" [FORCED: {'; '.join(comparison.forced)}]"
    if t.gate_failed:
        tolerance = percent_text(comparison.settings.max_drop)
        failure = ET.SubElement(case, "failure", type="regression",
                                message=f"significant drop beyond the {tolerance}-point tolerance")
        failure.text = text
    ET.SubElement(case, "system-out").text = f"{text}; gate: {gate_text(t, comparison.settings)}"


def junit_tree(comparison: Comparison) -> ET.ElementTree:
    """One test case per task: failed when the gate fails for it, skipped when not compared."""
    root = ET.Element("testsuites", name="r1eval regress")
    suite = ET.SubElement(
        root, "testsuite", time="0",
        name=f"{comparison.candidate.model} vs {comparison.base.model}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("base", str(comparison.base.path)), ("candidate", str(comparison.candidate.path)),
        ("alpha", f"{comparison.settings.alpha:g}"),
        ("max_drop_points", f"{100 * comparison.settings.max_drop:g}"),
        ("forced", "; ".join(comparison.forced)),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    for t in comparison.tasks:
        _task_case(suite, comparison, t)
    for task, why in comparison.skipped.items():
        case = ET.SubElement(suite, "testcase", classname="r1eval.regress", name=task, time="0")
        ET.SubElement(case, "skipped", message=f"not compared: {why}")
    tests = len(comparison.tasks) + len(comparison.skipped)
    failures = sum(t.gate_failed for t in comparison.tasks)
    for element in (root, suite):
        _counts(element, tests, failures, len(comparison.skipped))
    return ET.ElementTree(root)


def write_junit(comparison: Comparison, path: Path) -> None:
    tree = junit_tree(comparison)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
