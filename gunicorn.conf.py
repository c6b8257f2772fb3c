"""gunicorn settings for the tribes API (override any of them with GUNICORN_CMD_ARGS)."""

import os
import shutil
import tempfile

bind = os.environ.get("TRIBES_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("TRIBES_WORKERS", "2"))
worker_class = os.environ.get("TRIBES_WORKER_CLASS", "gthread")
threads = int(os.environ.get("TRIBES_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 0
accesslog = None  # the app writes structured access logs itself
errorlog = "-"
loglevel = "info"
# gunicorn's control socket (gunicornc) defaults to one path per user, which every instance on
# the machine would share; it is off unless TRIBES_CONTROL_SOCKET names this instance's own path.
control_socket = os.environ.get("TRIBES_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# Prometheus multiprocess mode: one folder of sample files shared by the workers.
_metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                     os.path.join(tempfile.gettempdir(), f"tribes-metrics-{os.getpid()}"))


def on_starting(server):
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)
    keys = os.environ.get("TRIBES_API_KEYS") or os.environ.get("TRIBES_API_KEYS_FILE")
    server.log.info("tribes API on %s — %s", ", ".join(f"http://{b}" for b in server.cfg.bind),
                    "API keys required for /v1/*" if keys else "NO API KEYS: open to anyone who can reach it")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
