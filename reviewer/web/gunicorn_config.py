"""gunicorn settings for the web app: ``gunicorn -c python:reviewer.web.gunicorn_config
--workers 2 --threads 2 -b 127.0.0.1:8000 'reviewer:create_app()'``.

Threads serve requests inside each worker process (``gthread``); ``post_fork`` hands each
worker's thread count to the app it loads (``REVIEWER_WEB_THREADS``), so the database pool of
every process matches its threads and no request waits for a connection another thread holds.
"""

import os

worker_class = "gthread"
threads = int(os.environ.get("REVIEWER_WEB_THREADS", "2"))


def post_fork(server, worker):
    os.environ["REVIEWER_WEB_THREADS"] = str(worker.cfg.threads)
