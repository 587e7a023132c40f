"""The Python client's benchmark worker, as a user writes one: one job handler that reports progress 50
once and returns an outcome. `jobwire-bench --only python-client` runs it in 4 processes:

    python -m jobwire worker python_worker:listener --concurrency 1 --commands ... --events ...
"""

from jobwire import Listener, ListenerEvent, Outcome

listener = Listener(name="bench-py")


@listener.job_handler("bench:run")
def run(event: ListenerEvent, tick) -> Outcome:
    tick(50)
    return Outcome(message="ok")
