"""Run output: summary.json and a self-contained report.html."""

from loadgate.report.html import write_report
from loadgate.report.summary import Summary, read_summary, write_summary

__all__ = ["Summary", "read_summary", "write_report", "write_summary"]
