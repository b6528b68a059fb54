"""gunicorn settings shared by the gateway app and the three services (distributed mode).

Usage: ``gunicorn -c deploy/gunicorn.conf.py intake.wsgi:app``. Tuned through the environment:
``PORT`` (default 8000), ``WEB_CONCURRENCY`` worker processes (default 2),
``GUNICORN_THREADS`` threads per worker (default 4) and ``FORWARDED_ALLOW_IPS``: the addresses
(or CIDR networks) of nginx, whose X-Forwarded-* headers are believed.
"""

import os
import tempfile

port = int(os.environ.get("PORT", "8000"))
bind = [f"0.0.0.0:{port}"]

# Threads let a worker keep serving while one request waits on PostgreSQL; the work that
# really takes CPU (PDFs, seals) runs in Celery workers, not here.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# The heartbeat file is touched constantly: on a disk-backed /tmp (Docker's overlayfs) that can
# stall a worker until it is killed as unresponsive.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

timeout = 60
# nginx finishes in-flight requests well within the container's stop grace period.
graceful_timeout = 30
# Longer than nginx's upstream keepalive_timeout (30s), so that nginx, not gunicorn, closes
# idle connections and never sends a request on a socket gunicorn is closing.
keepalive = 75

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
errorlog = "-"
access_log_format = (
    '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}i)s '
    'forwarded_for="%({x-forwarded-for}i)s"'
)

# Several gunicorns share a host in tests and in single-machine installs: one control socket
# per port keeps them from taking each other's.
control_socket = os.path.join(tempfile.gettempdir(), f"gunicorn-{port}.ctl")
