"""gunicorn settings for the tribes API (override any of them with GUNICORN_CMD_ARGS)."""

import errno
import gc
import os
import shutil
import socket
import tempfile

bind = os.environ.get("TRIBES_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("TRIBES_WORKERS", "2"))
worker_class = os.environ.get("TRIBES_WORKER_CLASS", "gthread")
threads = int(os.environ.get("TRIBES_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# SO_REUSEPORT for workers that keep connections open (gthread, gevent, ...): every worker listens
# on a socket of its own and the kernel spreads new connections over them by a hash of the client
# address. With gunicorn's one shared socket, whichever worker wakes first takes a connection and
# keeps it for its keep-alive life; under a 32-connection load one of two gthread workers often
# held 28-32 of them and its queue set the p99 (benchmarks/RESULTS.md). Not for sync workers, which
# close a connection after each response: with one shared socket the free worker takes the next
# one, with a socket each it waits behind a busy worker (p99 8.6 -> 17.1 ms measured). TCP binds
# only; TRIBES_REUSE_PORT=1 or 0 forces it on or off.
_reuse = os.environ.get("TRIBES_REUSE_PORT", "auto")
reuse_port = (
    _reuse == "1" or (_reuse == "auto" and worker_class != "sync")
) and not bind.startswith(("unix:", "fd://"))
max_requests = 0
accesslog = None  # the app writes structured access logs itself
errorlog = "-"
loglevel = "info"
# gunicorn's control socket (gunicornc) defaults to one path per user, which every instance on
# the machine would share; it is off unless TRIBES_CONTROL_SOCKET names this instance's own path.
control_socket = os.environ.get("TRIBES_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# Prometheus multiprocess mode: one folder of sample files shared by the workers.
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"tribes-metrics-{os.getpid()}")
)


def _refuse_taken_port(address: str) -> None:
    """With SO_REUSEPORT a second instance on the same port would silently share its traffic;
    a plain bind (without the option) still fails when anything listens there, so try one first."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.setsockopt(
        socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
    )  # a listener, not TIME_WAIT, blocks it
    try:
        probe.bind((host, int(port)))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(f"tribes API: {address} is already in use by another server") from None
        raise
    finally:
        probe.close()


def on_starting(server):
    if server.cfg.reuse_port:
        for address in server.cfg.bind:
            _refuse_taken_port(address)
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)
    keys = os.environ.get("TRIBES_API_KEYS") or os.environ.get("TRIBES_API_KEYS_FILE")
    server.log.info(
        "tribes API on %s — %s",
        ", ".join(f"http://{b}" for b in server.cfg.bind),
        "API keys required for /v1/*" if keys else "NO API KEYS: open to anyone who can reach it",
    )


def post_worker_init(worker):
    """Move everything the worker has made so far (imported modules, the Flask app, settings:
    ~94,000 objects, all kept for the worker's life) out of the cyclic garbage collector's
    reach. A full collection stops every thread of the worker while it walks the tracked
    objects; with these frozen it walks only what requests and models made since (after
    start-up a full collection took 31-37 ms, frozen ~0; 40-90 ms when the API still imported
    the recompute pipeline's ~185,000).
    Garbage from start-up is collected first, so that none of it is frozen for good; the model
    loads on the first request, after this, so a model swapped out later is still freed."""
    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
