"""``morphware demo``: the embedded market (``market.LocalMarket``) and one job run on it
(``run.run_demo``)."""

from morphware.runtime.demo.market import TOKEN, LocalMarket, Participant, measured_macs
from morphware.runtime.demo.run import EXAMPLE_JOB, DemoResult, run_demo, summary

__all__ = ["EXAMPLE_JOB", "TOKEN", "DemoResult", "LocalMarket", "Participant", "measured_macs",
           "run_demo", "summary"]
