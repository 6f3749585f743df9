"""The job engine: submit, poll, receive callbacks, resume, deliver through a port. Never imports discord."""

from bot.jobs.engine import EngineConfig, JobEngine
from bot.jobs.policy import Backoff, PollPolicy
from bot.jobs.ports import DeliveryPort, JobEvent
from bot.jobs.requests import JobRequest

__all__ = ["Backoff", "DeliveryPort", "EngineConfig", "JobEngine", "JobEvent", "JobRequest", "PollPolicy"]
