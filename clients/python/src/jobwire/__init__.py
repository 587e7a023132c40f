"""Jobwire for Python: a client, listeners and workers for the Jobwire jobs broker (over ZeroMQ).

    from jobwire import JobsClient, Listener, ListenerEvent, Outcome

    client = JobsClient()                       # JOBWIRE_COMMANDS, else tcp://127.0.0.1:7401
    job = client.create("workbook", "export", "us_wb_1")

    listener = Listener(name="exports")

    @listener.job_handler("workbook:export")
    def export(event: ListenerEvent) -> Outcome:
        event.tick(50, "Half way")
        return Outcome(message="Exported")

Run a listener with ``python -m jobwire worker module:listener --concurrency 8``.
"""

from .client import (DEFAULT_COMMANDS, DEFAULT_EVENTS, Client, JobsClient, default_commands, default_events,
                     new_instance_id, process_instance_id)
from .connection import Connection, parse_endpoints
from .errors import ConnectionClosed, JobwireError, JobwireTimeout, ProtocolError, RetryableError
from .glob import HEARTBEAT_TOPIC, glob_match, split_topic_frame, subscription_prefix
from .leases import LeaseKeeper
from .listener import JobCompletion, Listener, ListenerEvent
from .types import (TERMINAL_STATUSES, Action, BrokerInfo, Event, EventPage, Job, JobPage, Json, Lease, Outcome,
                    OutcomeNext, Pagination, PartData, PartsSummary, format_time)

__version__ = "0.1.0"

__all__ = [
    "Action", "BrokerInfo", "Client", "Connection", "ConnectionClosed", "DEFAULT_COMMANDS", "DEFAULT_EVENTS",
    "Event", "EventPage", "HEARTBEAT_TOPIC", "Job", "JobCompletion", "JobPage", "JobsClient", "JobwireError",
    "JobwireTimeout", "Json", "Lease", "LeaseKeeper", "Listener", "ListenerEvent", "Outcome", "OutcomeNext",
    "Pagination", "PartData", "PartsSummary", "ProtocolError", "RetryableError", "TERMINAL_STATUSES",
    "default_commands", "default_events", "format_time", "glob_match", "new_instance_id", "parse_endpoints",
    "process_instance_id", "split_topic_frame", "subscription_prefix",
]
