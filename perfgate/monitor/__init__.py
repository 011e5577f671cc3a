"""The monitor: rolling latency windows, Prometheus metrics, alerts, regressions, dashboard."""

from perfgate.monitor.alerts import Alert, AlertBook, AlertEvent, Check
from perfgate.monitor.monitor import ALERTS_CHANNEL, STATS_CHANNEL, Monitor, Publish
from perfgate.monitor.recommend import Recommendation, recommend
from perfgate.monitor.regression import Regression, RegressionPolicy, detect
from perfgate.monitor.routes import monitor_blueprint
from perfgate.monitor.system import SystemSample, SystemSampler
from perfgate.monitor.window import RollingWindow, SeriesWindows, WindowStats

__all__ = [
    "ALERTS_CHANNEL",
    "STATS_CHANNEL",
    "Alert",
    "AlertBook",
    "AlertEvent",
    "Check",
    "Monitor",
    "Publish",
    "Recommendation",
    "Regression",
    "RegressionPolicy",
    "RollingWindow",
    "SeriesWindows",
    "SystemSample",
    "SystemSampler",
    "WindowStats",
    "detect",
    "monitor_blueprint",
    "recommend",
]
